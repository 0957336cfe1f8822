"""A plain Flask app served by an ASGI server through ``bridgeway.WSGIToASGI``."""
