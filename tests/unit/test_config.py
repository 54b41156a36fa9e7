"""common/config.py: loading and validating the cluster TOML file (design §2)."""

import json
import stat

import pytest

from common.config import ConfigError, Tuning, load_cluster

NODES = """
[nodes.frontend-1]
service = "frontend"
url = "http://127.0.0.1:8000"

[nodes.catalog-1]
service = "catalog"
url = "http://127.0.0.1:8101"

[nodes.catalog-2]
service = "catalog"
url = "http://127.0.0.1:8102"

[nodes.order-1]
service = "order"
url = "http://127.0.0.1:8201"

[nodes.order-2]
service = "order"
url = "http://127.0.0.1:8202"

[nodes.recovery-1]
service = "recovery"
url = "http://127.0.0.1:8301"
"""

STAFF = "staff-token-0123456789"
SECRET = "cluster-secret-0123456789"
AUTH = f"""
[auth]
staff_token = "{STAFF}"
cluster_secret = "{SECRET}"
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("BAZAR_CONFIG", "BAZAR_STAFF_TOKEN", "BAZAR_CLUSTER_SECRET"):
        monkeypatch.delenv(name, raising=False)


def write(tmp_path, text, *, data_dir='data_dir = "../data"\n'):
    """Write a config under tmp_path/conf/ so a relative data_dir stays inside tmp_path."""
    folder = tmp_path / "conf"
    folder.mkdir(exist_ok=True)
    path = folder / "cluster.toml"
    path.write_text(data_dir + text)
    return path


def load_error(tmp_path, text, **kwargs):
    path = write(tmp_path, text, **kwargs)
    with pytest.raises(ConfigError) as caught:
        load_cluster(path)
    return str(caught.value)


# -- a valid file --------------------------------------------------------------


def test_valid_config_keeps_nodes_in_config_order(tmp_path):
    cluster = load_cluster(write(tmp_path, AUTH + NODES))
    assert list(cluster.nodes) == [
        "frontend-1",
        "catalog-1",
        "catalog-2",
        "order-1",
        "order-2",
        "recovery-1",
    ]


def test_of_lists_a_service_in_config_order(tmp_path):
    cluster = load_cluster(write(tmp_path, AUTH + NODES))
    assert [n.name for n in cluster.of("catalog")] == ["catalog-1", "catalog-2"]
    assert cluster.recovery.name == "recovery-1"


def test_node_url_host_and_port(tmp_path):
    node = load_cluster(write(tmp_path, AUTH + NODES)).node("catalog-2")
    assert (node.service, node.url, node.host, node.port) == (
        "catalog",
        "http://127.0.0.1:8102",
        "127.0.0.1",
        8102,
    )


def test_trailing_slash_of_url_is_dropped(tmp_path):
    text = NODES.replace('"http://127.0.0.1:8000"', '"http://127.0.0.1:8000/"')
    cluster = load_cluster(write(tmp_path, AUTH + text))
    assert cluster.node("frontend-1").url == "http://127.0.0.1:8000"


def test_unknown_node_name_is_a_config_error(tmp_path):
    cluster = load_cluster(write(tmp_path, AUTH + NODES))
    with pytest.raises(ConfigError, match="catalog-9"):
        cluster.node("catalog-9")


def test_tuning_defaults_apply_without_a_tuning_table(tmp_path):
    cluster = load_cluster(write(tmp_path, AUTH + NODES))
    assert cluster.tuning == Tuning()


def test_tuning_values_override_defaults(tmp_path):
    text = AUTH + "[tuning]\nthreads = 3\ncache_ttl = 2.5\nhealth_period = 1\n" + NODES
    tuning = load_cluster(write(tmp_path, text)).tuning
    assert (tuning.threads, tuning.cache_ttl, tuning.health_period) == (3, 2.5, 1)
    assert tuning.cache_size == Tuning().cache_size


def test_staff_sign_in_rules_default_and_override(tmp_path):
    assert load_cluster(write(tmp_path, AUTH + NODES)).staff.token_minutes == 15
    text = AUTH + "[staff]\ntoken_minutes = 5\nlogin_failures = 3\n" + NODES
    staff = load_cluster(write(tmp_path, text)).staff
    assert (staff.token_minutes, staff.login_failures, staff.lockout_seconds) == (5, 3, 300)


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ("[staff]\ntoken_hours = 1\n", "unknown key 'staff.token_hours'"),
        ("[staff]\nlogin_failures = 0\n", "'staff.login_failures' must be greater than 0"),
        ("[staff]\nlogin_failures = 2.5\n", "'staff.login_failures' must be an integer"),
    ],
)
def test_bad_staff_rules_are_named(tmp_path, table, words):
    assert words in load_error(tmp_path, AUTH + table + NODES)


def test_retention_defaults_and_override(tmp_path):
    assert load_cluster(write(tmp_path, AUTH + NODES)).retention.keys_days == 7
    text = AUTH + "[retention]\nkeys_days = 0.0002\nqueue_cap = 5\n" + NODES
    retention = load_cluster(write(tmp_path, text)).retention
    assert (retention.keys_days, retention.queue_cap) == (0.0002, 5)
    assert retention.compact_every_seconds == 3600


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ("[retention]\nkeys_days = 0\n", "'retention.keys_days' must be greater than 0"),
        ("[retention]\nqueue_cap = 2.5\n", "'retention.queue_cap' must be an integer"),
        ("[retention]\nkeys_hours = 1\n", "unknown key 'retention.keys_hours'"),
    ],
)
def test_bad_retention_is_named(tmp_path, table, words):
    assert words in load_error(tmp_path, AUTH + table + NODES)


def test_data_dir_is_relative_to_the_config_folder(tmp_path):
    cluster = load_cluster(write(tmp_path, AUTH + NODES))
    assert cluster.data_dir == (tmp_path / "data").resolve()


def test_default_data_dir_is_var_next_to_the_config_folder(tmp_path):
    cluster = load_cluster(write(tmp_path, AUTH + NODES, data_dir=""))
    assert cluster.data_dir == (tmp_path / "var").resolve()


def test_db_path_lives_in_data_dir(tmp_path):
    cluster = load_cluster(write(tmp_path, AUTH + NODES))
    assert cluster.db_path("order-1") == (tmp_path / "data" / "order-1.sqlite3").resolve()


def test_bazar_config_env_selects_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, AUTH + NODES)
    monkeypatch.setenv("BAZAR_CONFIG", str(path))
    assert load_cluster().path == path.resolve()


def test_explicit_path_wins_over_bazar_config(tmp_path, monkeypatch):
    path = write(tmp_path, AUTH + NODES)
    monkeypatch.setenv("BAZAR_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert load_cluster(path).path == path.resolve()


# -- file-level errors ---------------------------------------------------------


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_cluster(tmp_path / "nope.toml")


def test_malformed_toml_is_a_config_error(tmp_path):
    message = load_error(tmp_path, AUTH + NODES + "\n[nodes.broken\n")
    assert "malformed TOML" in message


def test_unknown_top_level_key(tmp_path):
    message = load_error(tmp_path, 'colour = "blue"\n' + AUTH + NODES)
    assert "'colour'" in message


def test_unknown_auth_key(tmp_path):
    message = load_error(tmp_path, AUTH + 'password = "x"\n' + NODES)
    assert "'auth.password'" in message


def test_data_dir_of_wrong_type(tmp_path):
    message = load_error(tmp_path, AUTH + NODES, data_dir="data_dir = 5\n")
    assert "'data_dir'" in message


def test_nodes_must_be_a_table(tmp_path):
    message = load_error(tmp_path, 'nodes = "all of them"\n' + AUTH)
    assert "'nodes'" in message


# -- [nodes.X] errors ----------------------------------------------------------


def test_unknown_key_inside_a_node(tmp_path):
    text = NODES.replace(
        'url = "http://127.0.0.1:8101"', 'url = "http://127.0.0.1:8101"\nweight = 2'
    )
    message = load_error(tmp_path, AUTH + text)
    assert "'nodes.catalog-1.weight'" in message


def test_bad_service_name(tmp_path):
    text = NODES.replace('service = "order"', 'service = "orders"', 1)
    message = load_error(tmp_path, AUTH + text)
    assert "'nodes.order-1.service'" in message


def test_service_of_wrong_type(tmp_path):
    text = NODES.replace('service = "order"', "service = 5", 1)
    message = load_error(tmp_path, AUTH + text)
    assert "'nodes.order-1.service'" in message


def test_missing_url(tmp_path):
    text = NODES.replace('url = "http://127.0.0.1:8201"\n', "")
    message = load_error(tmp_path, AUTH + text)
    assert "'nodes.order-1.url'" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:8201",
        "http://127.0.0.1",
        "127.0.0.1:8201",
        "http://127.0.0.1:8201/api",
        "http://:8201",
    ],
)
def test_bad_url(tmp_path, url):
    text = NODES.replace('"http://127.0.0.1:8201"', f'"{url}"')
    message = load_error(tmp_path, AUTH + text)
    assert "'nodes.order-1.url'" in message


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://127.0.0.1:port"])
def test_url_with_invalid_port_is_a_config_error(tmp_path, url):
    text = NODES.replace('"http://127.0.0.1:8201"', f'"{url}"')
    message = load_error(tmp_path, AUTH + text)
    assert "'nodes.order-1.url'" in message


def test_url_of_wrong_type(tmp_path):
    text = NODES.replace('url = "http://127.0.0.1:8201"', "url = 8201")
    message = load_error(tmp_path, AUTH + text)
    assert "'nodes.order-1.url'" in message


def test_missing_recovery_node(tmp_path):
    text = NODES.split("[nodes.recovery-1]")[0]
    message = load_error(tmp_path, AUTH + text)
    assert "recovery" in message


def test_two_recovery_nodes(tmp_path):
    extra = '\n[nodes.recovery-2]\nservice = "recovery"\nurl = "http://127.0.0.1:8302"\n'
    message = load_error(tmp_path, AUTH + NODES + extra)
    assert "exactly one recovery" in message


def test_missing_catalog_service(tmp_path):
    text = NODES.replace('service = "catalog"', 'service = "order"')
    message = load_error(tmp_path, AUTH + text)
    assert "catalog" in message


def test_duplicate_urls(tmp_path):
    text = NODES.replace('"http://127.0.0.1:8102"', '"http://127.0.0.1:8101"')
    message = load_error(tmp_path, AUTH + text)
    assert "same url" in message


def test_duplicate_urls_differing_by_trailing_slash(tmp_path):
    text = NODES.replace('"http://127.0.0.1:8102"', '"http://127.0.0.1:8101/"')
    message = load_error(tmp_path, AUTH + text)
    assert "same url" in message


# -- [tuning] errors -----------------------------------------------------------


def test_unknown_tuning_key(tmp_path):
    message = load_error(tmp_path, AUTH + "[tuning]\nworkers = 4\n" + NODES)
    assert "'tuning.workers'" in message


@pytest.mark.parametrize("value", ['"8"', "true", "2.5"])
def test_integer_tuning_of_wrong_type(tmp_path, value):
    message = load_error(tmp_path, AUTH + f"[tuning]\nthreads = {value}\n" + NODES)
    assert "'tuning.threads'" in message
    assert "integer" in message


@pytest.mark.parametrize("value", ['"fast"', "false"])
def test_number_tuning_of_wrong_type(tmp_path, value):
    message = load_error(tmp_path, AUTH + f"[tuning]\nread_timeout = {value}\n" + NODES)
    assert "'tuning.read_timeout'" in message


@pytest.mark.parametrize("value", ["0", "-1", "-0.5"])
def test_tuning_must_be_positive(tmp_path, value):
    message = load_error(tmp_path, AUTH + f"[tuning]\ncache_ttl = {value}\n" + NODES)
    assert "'tuning.cache_ttl'" in message


def test_tuning_nan_is_refused(tmp_path):
    message = load_error(tmp_path, AUTH + "[tuning]\nread_timeout = nan\n" + NODES)
    assert "'tuning.read_timeout'" in message


def test_tuning_must_be_a_table(tmp_path):
    message = load_error(tmp_path, "tuning = 5\n" + AUTH + NODES)
    assert "'tuning'" in message


# -- secrets -------------------------------------------------------------------


def test_auth_table_values_are_used(tmp_path):
    cluster = load_cluster(write(tmp_path, AUTH + NODES))
    assert (cluster.staff_token, cluster.cluster_secret) == (STAFF, SECRET)


def test_short_auth_secret_is_refused(tmp_path):
    text = AUTH.replace(STAFF, "short")
    message = load_error(tmp_path, text + NODES)
    assert "'auth.staff_token'" in message


def test_auth_secret_of_wrong_type_is_refused(tmp_path):
    text = AUTH.replace(f'"{SECRET}"', "12345678901234567890")
    message = load_error(tmp_path, text + NODES)
    assert "'auth.cluster_secret'" in message


def test_secrets_are_generated_into_data_dir(tmp_path):
    cluster = load_cluster(write(tmp_path, NODES))
    stored = json.loads((tmp_path / "data" / "secrets.json").read_text())
    assert stored == {
        "staff_token": cluster.staff_token,
        "cluster_secret": cluster.cluster_secret,
    }


def test_generated_secrets_are_long_and_distinct(tmp_path):
    cluster = load_cluster(write(tmp_path, NODES))
    assert len(cluster.staff_token) >= 16
    assert len(cluster.cluster_secret) >= 16
    assert cluster.staff_token != cluster.cluster_secret


def test_generated_secrets_file_has_mode_0600(tmp_path):
    load_cluster(write(tmp_path, NODES))
    mode = stat.S_IMODE((tmp_path / "data" / "secrets.json").stat().st_mode)
    assert mode == 0o600


def test_generated_secrets_are_stable_across_loads(tmp_path):
    path = write(tmp_path, NODES)
    first = load_cluster(path)
    second = load_cluster(path)
    assert (first.staff_token, first.cluster_secret) == (
        second.staff_token,
        second.cluster_secret,
    )


def test_make_secrets_false_writes_no_file(tmp_path):
    load_cluster(write(tmp_path, NODES), make_secrets=False)
    assert not (tmp_path / "data" / "secrets.json").exists()


def test_env_overrides_auth_table(tmp_path, monkeypatch):
    monkeypatch.setenv("BAZAR_STAFF_TOKEN", "env-staff-token-0123456789")
    monkeypatch.setenv("BAZAR_CLUSTER_SECRET", "env-cluster-secret-0123456789")
    cluster = load_cluster(write(tmp_path, AUTH + NODES))
    assert (cluster.staff_token, cluster.cluster_secret) == (
        "env-staff-token-0123456789",
        "env-cluster-secret-0123456789",
    )


def test_env_overrides_generated_secrets(tmp_path, monkeypatch):
    path = write(tmp_path, NODES)
    generated = load_cluster(path)
    monkeypatch.setenv("BAZAR_STAFF_TOKEN", "env-staff-token-0123456789")
    cluster = load_cluster(path)
    assert cluster.staff_token == "env-staff-token-0123456789"
    assert cluster.cluster_secret == generated.cluster_secret
