"""Names vulture cannot see used: called by frameworks, not by our code (`make lint`).

pydantic reads `model_config` and calls validators; http.server calls handler
methods and reads class attributes; logging calls `Formatter.format`; context
managers receive `__exit__`'s arguments; setuptools' entry points load
`LocalSubmitter`; psycopg2 and requests read the attributes we set on their
objects; dataclass fields are read by `asdict` (status --json) and the report.
"""

# pydantic
model_config  # noqa
_dsn_parses  # noqa
_unlimited_is_none  # noqa
_is_http_url  # noqa
_clean_prefix  # noqa
_money  # noqa
_consistent  # noqa
_within_years  # noqa
_distinct  # noqa
schema_version  # noqa
log_format  # noqa: validated so that a bad LOG_FORMAT is exit 78 (the CLI reads it first)

# http.server handlers and servers
do_GET  # noqa
do_POST  # noqa
do_DELETE  # noqa
log_message  # noqa
protocol_version  # noqa
disable_nagle_algorithm  # noqa
daemon_threads  # noqa
block_on_close  # noqa
handle_error  # noqa
client_address  # noqa
format  # noqa: logging.Formatter.format, BaseHTTPRequestHandler.log_message's argument

# context managers (__exit__'s traceback), attributes set on library objects
tb  # noqa
autocommit  # noqa
itersize  # noqa
trust_env  # noqa
prec  # noqa

# entry points (pyproject.toml [project.entry-points."worthy_batch.devkit"])
LocalSubmitter  # noqa

# dataclass fields read through asdict / json (status --json, the report)
updated_at  # noqa
last_error  # noqa

# enum completeness: exit 0 is returned as a plain int by every handler
OK  # noqa

# read by tests of the stub and of the limiter, which drive them
set_rate_limit  # noqa
faults_served  # noqa

# Settings read by name through the providers table (common/adapters/marketdata/providers.py)
exchange_rate_api_key  # noqa
finnhub_base_url  # noqa
alpha_vantage_base_url  # noqa
exchange_rate_base_url  # noqa
finnhub_calls_per_day  # noqa
alpha_vantage_calls_per_day  # noqa
exchange_rate_calls_per_day  # noqa
