"""Which items of docs/checklist.md the WSGIToASGI side checks through real servers, and
which it can only partly observe there (read by ``gen_table.py`` for ``docs/conformance.md``).

``COVERED`` maps an item to its tests: ``file::test`` in ``tests/``, parametrised over
every ASGI server where the item is observable (the test ids carry the items:
``test_NAME[ITEMS:CASE:SERVER]``). ``NOT_OBSERVABLE`` maps an item to the reason no server
can show it (none on this side: every item is seen through at least one server), and
``PARTLY_OBSERVABLE`` names the parts of covered items that no server here can show,
with the in-process tests that check those parts instead.
"""

from __future__ import annotations

_C = "conformance/test_w2a_conformance.py::"

COVERED: dict[str, list[str]] = {
    # EXT (WSGIToASGI side)
    "EXT-01": [_C + "test_differential"],
    "EXT-02": [_C + "test_differential"],
    "EXT-03": [_C + "test_aborted_file_download_closes_the_file"],
    "EXT-04": [_C + "test_environ_shape"],
    "EXT-05": [_C + "test_stream_chunks_arrive_as_yielded"],
    # HTTP (ASGI side)
    "HTTP-01": [
        _C + "test_expect_continue_rejected_without_reading",
        _C + "test_expect_continue_then_body",
    ],
    "HTTP-03": [
        _C + "test_differential",
        _C + "test_head_response_closes_the_iterable",
        _C + "test_keep_alive_after_every_kind_of_response",
    ],
    "HTTP-05": [
        _C + "test_204_with_a_body_stays_clean",
        _C + "test_errors_after_headers_abort_the_response",
        _C + "test_hop_by_hop_headers_from_the_app",
        _C + "test_keep_alive_after_every_kind_of_response",
    ],
    "HTTP-06": [_C + "test_differential", _C + "test_transfer_encoding_overrides_content_length"],
    "HTTP-07": [
        _C + "test_http2_response_headers_and_framing",
        _C + "test_streamed_response_to_an_http10_client",
    ],
    "HTTP-09": [_C + "test_content_length_is_enforced", _C + "test_differential"],
    "HTTP-10": [_C + "test_server_managed_headers_are_not_duplicated"],
    # W2A-ENV
    "W2A-ENV-01": [_C + "test_differential", _C + "test_environ_shape"],
    "W2A-ENV-02": [_C + "test_differential"],
    "W2A-ENV-03": [_C + "test_root_path_from_the_server", _C + "test_scope_shapes_through_a_shim"],
    "W2A-ENV-04": [_C + "test_root_path_from_the_server", _C + "test_scope_shapes_through_a_shim"],
    "W2A-ENV-05": [_C + "test_differential", _C + "test_raw_utf8_bytes_in_the_request_line"],
    "W2A-ENV-06": [_C + "test_differential", _C + "test_scope_shapes_through_a_shim"],
    "W2A-ENV-07": [_C + "test_differential"],
    "W2A-ENV-08": [_C + "test_differential", _C + "test_raw_utf8_bytes_in_the_request_line"],
    "W2A-ENV-09": [_C + "test_differential"],
    "W2A-ENV-10": [_C + "test_differential"],
    "W2A-ENV-11": [
        _C + "test_differential",
        _C + "test_http2_request_environ",
        _C + "test_repeated_header_cap",
    ],
    "W2A-ENV-12": [_C + "test_differential"],
    "W2A-ENV-13": [_C + "test_differential", _C + "test_http2_request_environ"],
    "W2A-ENV-14": [_C + "test_environ_shape", _C + "test_unix_socket_server_and_client"],
    "W2A-ENV-15": [_C + "test_differential", _C + "test_http2_request_environ"],
    "W2A-ENV-16": [
        _C + "test_client_and_scheme_follow_the_server",
        _C + "test_environ_shape",
        _C + "test_unix_socket_server_and_client",
    ],
    "W2A-ENV-17": [
        _C + "test_client_and_scheme_follow_the_server",
        _C + "test_https_scheme_over_real_tls",
    ],
    "W2A-ENV-18": [
        _C + "test_differential",
        _C + "test_environ_shape",
        _C + "test_errors_stream_goes_to_the_server_log",
    ],
    "W2A-ENV-19": [_C + "test_environ_shape"],
    "W2A-ENV-20": [_C + "test_options_asterisk"],
    "W2A-ENV-21": [_C + "test_environ_shape"],
    "W2A-ENV-22": [_C + "test_repeated_header_cap"],
    # W2A-INPUT
    "W2A-INPUT-01": [_C + "test_differential"],
    "W2A-INPUT-02": [_C + "test_differential"],
    "W2A-INPUT-03": [_C + "test_differential"],
    "W2A-INPUT-04": [_C + "test_differential"],
    "W2A-INPUT-05": [_C + "test_differential"],
    "W2A-INPUT-06": [
        _C + "test_app_runs_before_the_body_has_arrived",
        _C + "test_slow_app_holds_the_upload_back",
    ],
    "W2A-INPUT-07": [_C + "test_differential"],
    "W2A-INPUT-08": [_C + "test_differential", _C + "test_unread_body_never_deadlocks"],
    "W2A-INPUT-09": [_C + "test_client_leaving_mid_upload_is_an_error"],
    "W2A-INPUT-10": [_C + "test_client_leaving_mid_upload_is_an_error"],
    "W2A-INPUT-11": [_C + "test_reading_input_after_the_response"],
    "W2A-INPUT-12": [_C + "test_app_runs_before_the_body_has_arrived"],
    # W2A-RESP
    "W2A-RESP-01": [_C + "test_status_is_checked_at_start_response"],
    "W2A-RESP-02": [_C + "test_bad_response_headers_raise_in_the_app"],
    "W2A-RESP-03": [_C + "test_differential"],
    "W2A-RESP-04": [_C + "test_differential", _C + "test_http2_response_headers_and_framing"],
    "W2A-RESP-05": [
        _C + "test_hop_by_hop_headers_from_the_app",
        _C + "test_http2_response_headers_and_framing",
    ],
    "W2A-RESP-06": [_C + "test_exc_info_replaces_unsent_headers"],
    "W2A-RESP-07": [
        _C + "test_empty_chunks_do_not_send_the_headers",
        _C + "test_errors_before_headers_become_a_clean_500",
        _C + "test_stream_chunks_arrive_as_yielded",
    ],
    "W2A-RESP-08": [_C + "test_differential", _C + "test_keep_alive_after_every_kind_of_response"],
    "W2A-RESP-09": [_C + "test_differential", _C + "test_write_reaches_the_client_at_once"],
    "W2A-RESP-10": [
        _C + "test_slow_reader_holds_the_generator_back",
        _C + "test_stream_chunks_arrive_as_yielded",
    ],
    "W2A-RESP-11": [_C + "test_errors_after_headers_abort_the_response"],
    "W2A-RESP-12": [
        _C + "test_errors_after_headers_abort_the_response",
        _C + "test_errors_before_headers_become_a_clean_500",
    ],
    "W2A-RESP-13": [
        _C + "test_client_leaving_mid_download_stops_the_app",
        _C + "test_content_length_is_enforced",
        _C + "test_errors_after_headers_abort_the_response",
        _C + "test_errors_before_headers_become_a_clean_500",
        _C + "test_head_response_closes_the_iterable",
        _C + "test_stream_chunks_arrive_as_yielded",
    ],
    "W2A-RESP-14": [
        _C + "test_aborted_file_download_closes_the_file",
        _C + "test_client_leaving_mid_download_stops_the_app",
    ],
    "W2A-RESP-15": [_C + "test_content_length_is_enforced"],
    "W2A-RESP-16": [
        _C + "test_differential",
        _C + "test_server_managed_headers_are_not_duplicated",
    ],
    "W2A-RESP-17": [
        _C + "test_204_with_a_body_stays_clean",
        _C + "test_server_managed_headers_are_not_duplicated",
    ],
    "W2A-RESP-18": [_C + "test_blocking_requests_run_in_parallel"],
    # W2A-SCOPE
    "W2A-SCOPE-01": [_C + "test_environ_shape"],
    "W2A-SCOPE-02": [_C + "test_lifespan_shutdown_waits_for_requests"],
    "W2A-SCOPE-03": [_C + "test_failing_startup_hook_stops_the_server"],
    "W2A-SCOPE-04": [_C + "test_environ_shape"],
    "W2A-SCOPE-05": [_C + "test_forked_workers_all_serve"],
    "W2A-SCOPE-06": [_C + "test_websocket_is_refused_cleanly"],
    "W2A-SCOPE-07": [_C + "test_unknown_scope_type_is_refused"],
    "W2A-SCOPE-08": [_C + "test_under_starlette_mount"],
}

NOT_OBSERVABLE: dict[str, str] = {}

PARTLY_OBSERVABLE: dict[str, str] = {
    "W2A-ENV-14": "server=None in the scope: no server sends it (unix sockets give [path, None],"
    " covered); granian's str ports / ipaddress hosts are covered by every granian run",
    "W2A-ENV-17": "real TLS only on hypercorn and granian (uvicorn, daphne: through trusted"
    " X-Forwarded-Proto on the uvicorns; daphne has no TLS without twisted endpoints)",
    "W2A-ENV-18": "a configured wsgi.multiprocess=True is in-process only"
    " (tests/w2a/test_w2a_environ.py); every server run checks the default False",
    "W2A-ENV-22": "the 5,000-line / 50 ms case: every server's own header limits (h11 16 KiB,"
    " granian and gunicorn 100 fields) answer before the adapter; 150 lines are checked",
    "W2A-INPUT-06": "worker RSS growth under a 1 GiB upload is measured in-process"
    " (tests/w2a/test_w2a_memory.py); through servers the client-side flow control is checked",
    "W2A-INPUT-10": "pool busy-thread and asyncio task counts need a debug hook inside the"
    " server process (tests/w2a/test_w2a_disconnect.py); servers show the prompt wake-up",
    "W2A-RESP-06": "the weakref-to-exc_info check needs the app's frame (in-process,"
    " tests/w2a/test_w2a_response.py); servers show the replaced status and headers",
    "W2A-RESP-10": "RSS under 200 x 1 MiB is in-process (tests/w2a/test_w2a_memory.py); servers"
    " show the generator held back by a client that stops reading",
    "W2A-RESP-13": "cancellation at server shutdown with a stream in flight"
    " (tests/w2a/test_w2a_close.py); servers show every other close() path",
    "EXT-02": "no server here advertises pathsend over a path bridgeway can prove: the bytes"
    " are compared on granian (which advertises pathsend) and on the others",
    "EXT-04": "no ASGI server here offers http.response.early_hint over HTTP/1.1 and bridgeway"
    " sends none: the absent key is checked on every server",
}
