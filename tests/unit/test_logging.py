import io
import json

from common.platform.logging import emit_metrics, get_logger, log_context, setup_logging
from common.platform.redact import redact, redact_url, register_secret


def test_json_lines_carry_context_fields_and_extras() -> None:
    out = io.StringIO()
    setup_logging("json", stream=out)
    with log_context(run_id="XNYS-20261127", chunk_index=3):
        get_logger("test").info("bought %d", 2, extra={"plan_id": 42})
    line = json.loads(out.getvalue())
    assert line["message"] == "bought 2"
    assert (line["run_id"], line["chunk_index"], line["plan_id"]) == ("XNYS-20261127", 3, 42)
    assert line["level"] == "info"


def test_text_lines_are_readable() -> None:
    out = io.StringIO()
    setup_logging("text", stream=out)
    with log_context(run_id="XNYS-20261127"):
        get_logger("test").warning("slow provider")
    assert "warning" in out.getvalue() and "slow provider  run_id=XNYS-20261127" in out.getvalue()


def test_embedded_metric_format_lines_declare_their_metrics() -> None:
    out = io.StringIO()
    setup_logging("json", stream=out)
    with log_context(run_id="XNYS-20261127", chunk_index=1):
        emit_metrics({"purchased": 5, "duration_ms": 120}, market="XNYS", stage="executor")
    doc = json.loads(out.getvalue())
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "WorthyBatch"
    assert directive["Dimensions"] == [["market", "stage"]]
    assert {"Name": "duration_ms", "Unit": "Milliseconds"} in directive["Metrics"]
    assert doc["purchased"] == 5 and doc["market"] == "XNYS" and doc["run_id"] == "XNYS-20261127"


def test_registered_secrets_never_reach_a_log_line() -> None:
    out = io.StringIO()
    setup_logging("json", stream=out)
    register_secret("sentinel-logging-key-123")
    get_logger("test").error("call failed: token=sentinel-logging-key-123")
    assert "sentinel-logging-key-123" not in out.getvalue()
    assert "***" in out.getvalue()


def test_urls_lose_their_keys() -> None:
    url = "https://www.alphavantage.co/query?function=GLOBAL_QUOTE&symbol=IBM&apikey=abc123XYZ"
    assert redact_url(url) == (
        "https://www.alphavantage.co/query?function=GLOBAL_QUOTE&symbol=IBM&apikey=***"
    )
    register_secret("exchange-key-sentinel")
    assert redact_url("https://v6.exchangerate-api.com/v6/exchange-key-sentinel/latest/USD") == (
        "https://v6.exchangerate-api.com/v6/***/latest/USD"
    )
    assert redact("nothing secret here") == "nothing secret here"


def test_log_fields_follow_work_onto_pool_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from common.platform.logging import carry_context

    out = io.StringIO()
    setup_logging("json", stream=out)
    with log_context(run_id="XNYS-20261127", chunk_index=2):
        work = carry_context(lambda: get_logger("test").info("on a thread"))
    with ThreadPoolExecutor(1) as pool:
        pool.submit(work).result()
    line = json.loads(out.getvalue())
    assert (line["run_id"], line["chunk_index"]) == ("XNYS-20261127", 2)
