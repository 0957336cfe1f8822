"""Which items of docs/checklist.md the ASGIToWSGI side checks through real servers, and
which it cannot observe there (read by ``gen_table.py`` for ``docs/conformance.md``).

``COVERED`` maps an item to its tests: ``file::test`` (parametrised over every WSGI
server where the item is observable; the test ids carry the item) in ``tests/``.
``NOT_OBSERVABLE`` maps an item to the reason no server can show it; those items are
checked in-process (``tests/a2w/test_a2w_*.py``).
"""

from __future__ import annotations

_C = "conformance/test_a2w_conformance.py::"
_LIVE = "test_live_a2w.py::"

COVERED: dict[str, list[str]] = {
    # A2W-SCOPE
    "A2W-SCOPE-01": [_C + "test_echo_matches_native"],
    "A2W-SCOPE-02": [
        _C + "test_echo_matches_native",
        _C + "test_environ_shapes_no_server_produces",
    ],
    "A2W-SCOPE-03": [_C + "test_echo_matches_native"],
    "A2W-SCOPE-04": [
        _C + "test_scheme_follows_the_servers_proxy_handling",
        _C + "test_environ_shapes_no_server_produces",
    ],
    "A2W-SCOPE-05": [_C + "test_echo_matches_native", _C + "test_mounted_root_path_is_in_path"],
    "A2W-SCOPE-06": [_C + "test_echo_matches_native", _C + "test_mounted_root_path_is_in_path"],
    "A2W-SCOPE-07": [_C + "test_echo_matches_native"],
    "A2W-SCOPE-08": [_C + "test_echo_matches_native"],
    "A2W-SCOPE-09": [_C + "test_echo_matches_native"],
    "A2W-SCOPE-10": [
        _C + "test_client_and_server_addresses",
        _C + "test_environ_shapes_no_server_produces",
    ],
    "A2W-SCOPE-11": [
        _C + "test_client_and_server_addresses",
        _C + "test_environ_shapes_no_server_produces",
    ],
    "A2W-SCOPE-12": [_C + "test_lifespan_state_and_isolation"],
    "A2W-SCOPE-13": [_C + "test_lifespan_state_and_isolation"],
    "A2W-SCOPE-14": [_C + "test_echo_matches_native", _C + "test_lifespan_state_and_isolation"],
    # A2W-RECV
    "A2W-RECV-01": [_C + "test_echo_matches_native"],
    "A2W-RECV-02": [
        _C + "test_echo_matches_native",
        _C + "test_receive_after_the_body_waits_for_the_response",
    ],
    "A2W-RECV-03": [_C + "test_echo_matches_native"],
    "A2W-RECV-04": [_C + "test_echo_matches_native", _C + "test_environ_shapes_no_server_produces"],
    "A2W-RECV-05": [_C + "test_client_leaving_mid_upload_is_a_disconnect"],
    "A2W-RECV-06": [_C + "test_receive_after_the_body_waits_for_the_response"],
    "A2W-RECV-07": [_C + "test_sse_client_that_leaves_is_noticed"],
    "A2W-RECV-08": [_C + "test_a_slow_upload_does_not_freeze_the_loop"],
    "A2W-RECV-09": [_C + "test_receive_from_two_tasks"],
    "A2W-RECV-10": [_C + "test_expect_continue"],
    "A2W-RECV-11": [_C + "test_waitress_disconnect_probe_reaches_a_silent_app"],
    # A2W-SEND
    "A2W-SEND-01": [_C + "test_send_matches_native"],
    "A2W-SEND-02": [_C + "test_send_matches_native"],
    "A2W-SEND-03": [_C + "test_invalid_messages_raise_in_the_app"],
    "A2W-SEND-04": [_C + "test_send_matches_native"],
    "A2W-SEND-05": [
        _C + "test_send_matches_native",
        _C + "test_errors_are_logged_with_traceback",
        _C + "test_an_aborted_response_is_never_reused",
    ],
    "A2W-SEND-06": [_C + "test_send_matches_native"],
    "A2W-SEND-07": [
        _C + "test_each_chunk_reaches_the_client_at_once",
        _C + "test_send_matches_native",
    ],
    "A2W-SEND-08": [_C + "test_sse_client_that_leaves_is_noticed"],
    "A2W-SEND-09": [_C + "test_message_after_the_final_body_raises"],
    "A2W-SEND-10": [
        _C + "test_send_matches_native",
        _C + "test_an_aborted_response_is_never_reused",
    ],
    "A2W-SEND-11": [_C + "test_work_after_the_final_body_does_not_delay_the_client"],
    "A2W-SEND-12": [_C + "test_send_matches_native"],
    "A2W-SEND-13": [_C + "test_sse_client_that_leaves_is_noticed"],
    # A2W-LIFE
    "A2W-LIFE-01": [
        _C + "test_lifespan_state_and_isolation",
        _LIVE + "test_lock_and_httpx_client_from_lifespan_4_threads_x_200",
    ],
    "A2W-LIFE-02": [_LIVE + "test_werkzeug_thread_per_request_reuses_a_handful_of_loops"],
    "A2W-LIFE-03": [
        _C + "test_lifespan_state_and_isolation",
        _LIVE + "test_lock_and_httpx_client_from_lifespan_4_threads_x_200",
    ],
    "A2W-LIFE-04": [
        _C + "test_work_after_the_final_body_does_not_delay_the_client",
        _LIVE + "test_thread_loop_mode_keeps_a_lifespan_ticker_running",
    ],
    "A2W-LIFE-05": [
        _C + "test_more_adapters_in_one_process",
        _LIVE + "test_lifespan_startup_failure_gives_500_and_skips_the_handler",
    ],
    "A2W-LIFE-06": [_C + "test_more_adapters_in_one_process"],
    "A2W-LIFE-07": [
        _C + "test_lifespan_shutdown_for_every_loop_when_the_server_stops",
        _LIVE + "test_shutdown_runs_when_max_requests_recycles_the_worker",
    ],
    "A2W-LIFE-08": [_LIVE + "test_gunicorn_preload_two_gthread_workers_serve_200_concurrent"],
    "A2W-LIFE-09": [_C + "test_lifespan_state_and_isolation", _C + "test_echo_matches_native"],
    "A2W-LIFE-10": [_C + "test_more_adapters_in_one_process"],
    "A2W-LIFE-11": [_C + "test_more_adapters_in_one_process"],
    "A2W-LIFE-12": [_C + "test_more_adapters_in_one_process"],
    # EXT (ASGIToWSGI side)
    "EXT-06": [_C + "test_pathsend_is_advertised_and_bridged"],
    "EXT-07": [_C + "test_lifespan_state_and_isolation"],
    "EXT-08": [_C + "test_lifespan_state_and_isolation", _C + "test_send_matches_native"],
    "EXT-09": [_C + "test_echo_matches_native"],
    # HTTP (WSGI side)
    "HTTP-02": [_C + "test_expect_continue"],
    "HTTP-04": [
        _C + "test_send_matches_native",
        _C + "test_head_leaves_no_body_bytes_on_the_connection",
    ],
    "HTTP-05": [
        _C + "test_keep_alive_survives_every_kind_of_response",
        _C + "test_head_leaves_no_body_bytes_on_the_connection",
        _C + "test_an_aborted_response_is_never_reused",
    ],
    "HTTP-08": [_C + "test_send_matches_native"],
    "HTTP-09": [_C + "test_pipelined_requests"],
    "HTTP-10": [_C + "test_send_matches_native"],
}

# Every A2W item is observable through some server; what the servers themselves cannot
# show for a given item is listed per server in the test module (xfail reasons, the
# STREAMING_INPUT/KEEP_ALIVE tables). The HTTP items of the ASGI side (HTTP-01, -03, -06,
# -07) and EXT-01..05 belong to the WSGIToASGI suite (coverage_w2a.py).
NOT_OBSERVABLE: dict[str, str] = {}
