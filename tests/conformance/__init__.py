"""Conformance suite: bridgeway against real servers, differential against native serving."""
