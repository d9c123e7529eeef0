"""Tokens that expire, a cloud that fails, and secrets that must never show: as a user sees it."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import subprocess
import sys
import threading
import time

from tests.conftest import PASSWORD, one_line
from tests.doubles.cloud.hostile_http import EndlessReplyServer


# -- tokens ----------------------------------------------------------------------------------


def test_an_expired_token_is_refreshed_once_and_the_call_retried(account, populated_cloud):
    populated_cloud.expire_tokens()
    populated_cloud.clear_requests()
    result = account("switch", "Desk Lamp", "on")
    assert result.code == 0, result
    assert populated_cloud.count("refreshToken") == 1
    assert populated_cloud.count("login") == 0
    # The new token was stored: the next command needs no refresh.
    populated_cloud.clear_requests()
    assert account("switch", "Desk Lamp", "off").code == 0
    assert populated_cloud.count("refreshToken") == 0


def test_an_expired_refresh_token_logs_in_again_with_the_stored_password(account, populated_cloud):
    populated_cloud.expire_tokens()
    populated_cloud.expire_refresh_tokens()
    populated_cloud.clear_requests()
    result = account("switch", "Desk Lamp", "on")
    assert result.code == 0, result
    assert populated_cloud.count("refreshToken") == 1
    assert populated_cloud.count("login") == 1
    assert populated_cloud.by_alias["Desk Lamp"].is_on()


def test_without_a_stored_password_an_expired_session_asks_for_login(cli, populated_cloud):
    cli.login("--no-store-password")
    assert PASSWORD not in (cli.config_dir / "secrets.json").read_text()
    populated_cloud.expire_tokens()
    populated_cloud.expire_refresh_tokens()
    result = cli("switch", "Desk Lamp", "on")
    assert result.code == 3
    assert "tpcloud login" in one_line(result.stderr)


def test_a_session_ended_elsewhere_is_renewed(account, populated_cloud):
    populated_cloud.fail_next("passthrough", -20675, "Account login in other places")
    result = account("switch", "Desk Lamp", "on")
    assert result.code == 0, result


# -- a cloud that fails ----------------------------------------------------------------------


def test_a_busy_cloud_is_retried_a_bounded_number_of_times(account, populated_cloud):
    account("list")
    populated_cloud.fail_next("passthrough", -20003, "Server busy", times=1)
    populated_cloud.clear_requests()
    assert account("switch", "Desk Lamp", "on").code == 0
    assert populated_cloud.count("passthrough") == 2
    populated_cloud.fail_next("passthrough", -20003, "Server busy", times=100)
    populated_cloud.clear_requests()
    result = account("switch", "Desk Lamp", "on")
    assert result.code == 8 and "busy" in one_line(result.stderr)
    assert populated_cloud.count("passthrough") == 3


def test_rate_limiting_is_not_retried(account, populated_cloud):
    account("list")
    populated_cloud.fail_next("passthrough", -20004, "Rate limited", times=100)
    populated_cloud.clear_requests()
    result = account("switch", "Desk Lamp", "on")
    assert result.code == 8 and "rate-limiting" in one_line(result.stderr)
    assert populated_cloud.count("passthrough") == 1


def test_an_html_error_page_is_reported_in_one_line(account, populated_cloud):
    account("list")
    populated_cloud.fail_next_http("passthrough", status=500, body=b"<html>oops</html>", times=100)
    result = account("switch", "Desk Lamp", "on")
    assert result.code == 8 and "HTTP 500" in one_line(result.stderr)


def test_a_reply_that_is_not_json(account, populated_cloud):
    account("list")
    populated_cloud.fail_next_http("passthrough", status=200, body=b"{not json", content_type="application/json")
    result = account("switch", "Desk Lamp", "on")
    assert result.code == 8 and "not JSON" in one_line(result.stderr)


def test_an_empty_reply(account, populated_cloud):
    account("list")
    populated_cloud.fail_next_http("passthrough", status=200, body=b"", content_type="application/json")
    result = account("switch", "Desk Lamp", "on")
    assert result.code == 8 and "empty" in one_line(result.stderr)


def test_a_redirect_is_not_followed(account, populated_cloud):
    account("list")
    populated_cloud.fail_next_http("passthrough", status=302, body=b"", content_type="text/html")
    result = account("switch", "Desk Lamp", "on")
    assert result.code == 8 and "redirect" in one_line(result.stderr)


def test_a_malformed_request_code_is_reported_as_a_bug(account, populated_cloud):
    account("list")
    populated_cloud.fail_next("passthrough", -20104, "Parameter doesn't exist")
    result = account("switch", "Desk Lamp", "on")
    assert result.code == 8 and "bug" in one_line(result.stderr)


def test_a_silent_cloud_times_out_within_the_bound(account, populated_cloud):
    account("list")
    populated_cloud.delay = 30
    started = time.monotonic()
    result = account("--timeout", "0.5", "switch", "Desk Lamp", "on")
    elapsed = time.monotonic() - started
    populated_cloud.delay = 0
    assert result.code == 7 and "did not answer within 0.5 s" in one_line(result.stderr)
    # three attempts of 0.5 s, 1.5 s of backoff, and Python's start-up
    assert elapsed < 10


def test_nothing_listening_is_a_network_error(cli, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = cli("login", "-u", "a@b.c", "--password-stdin", input="pw\n", env={"TPCLOUD_CLOUD_URL": f"http://127.0.0.1:{port}"})
    assert result.code == 7 and "cannot reach the cloud" in one_line(result.stderr)


def test_bad_timeout_and_cloud_url_are_usage_errors(cli):
    assert cli("--timeout", "0", "list").code == 2
    bad = cli("list", env={"TPCLOUD_CLOUD_URL": "ftp://example"})
    assert bad.code == 2 and "TPCLOUD_CLOUD_URL" in one_line(bad.stderr)


# -- secrets ---------------------------------------------------------------------------------


def test_verbose_shows_each_exchange_with_secrets_masked(account, populated_cloud):
    populated_cloud.expire_tokens()
    result = account("-v", "list", "--refresh")
    assert result.code == 0
    assert "> POST" in result.stderr and "< HTTP 200" in result.stderr
    assert "token=***" in result.stderr and '"refreshToken": "***"' in result.stderr
    populated_cloud.assert_no_secrets(result.output)


def test_no_secret_in_any_output_file_or_argument(cli, populated_cloud):
    outputs = [cli.login(), cli("-v", "login", "-u", "user@example.com", "--password-stdin", input=PASSWORD + "\n")]
    populated_cloud.expire_tokens()
    for args in (
        ("-v", "list", "--refresh"),
        ("--debug", "list", "--json"),
        ("-v", "switch", "Desk Lamp", "toggle", "--json"),
        ("-v", "state", "Office Strip"),
        ("--debug", "send", "Desk Lamp", '{"system":{"get_sysinfo":{}}}'),
        ("--debug", "switch", "Tapo Plug", "on"),
        ("--debug", "switch", "No Such Thing", "on"),
        ("-v", "--debug", "doctor"),
        ("-v", "--debug", "discover", "--timeout", "0.3"),
    ):
        outputs.append(cli(*args))
        populated_cloud.expire_tokens()
    populated_cloud.expire_refresh_tokens()
    outputs.append(cli("-v", "--debug", "switch", "Desk Lamp", "on"))
    terminal_uuids = populated_cloud.terminal_uuids
    for result in outputs:
        populated_cloud.assert_no_secrets(result.output)
        for value in terminal_uuids:
            assert value not in result.output
        assert all(PASSWORD not in arg for arg in result.args)
    for path, content in cli.files().items():
        if path.name == "secrets.json":
            continue  # the secret store itself (0600)
        for secret in populated_cloud.secrets():
            assert secret.encode() not in content, path


def test_the_passphrase_never_shows_even_when_it_is_wrong(cli, populated_cloud):
    passphrase = {"TPCLOUD_PASSPHRASE": "correct horse battery staple"}
    outputs = [cli("-v", "--debug", "login", "-u", "user@example.com", "--password-stdin", input=PASSWORD + "\n", env=passphrase)]
    outputs += [cli("-v", "--debug", *args, env=passphrase) for args in (("list",), ("switch", "Desk Lamp", "toggle"))]
    wrong = {"TPCLOUD_PASSPHRASE": "wrong horse battery staple"}
    outputs.append(cli("-v", "--debug", "list", "--refresh", env=wrong))
    assert [r.code for r in outputs] == [0, 0, 0, 9]
    for result in outputs:
        assert "horse" not in result.output
    assert b"horse" not in b"".join(cli.files().values())


def test_the_password_is_not_in_the_running_processs_arguments(cli, populated_cloud):
    populated_cloud.delay = 1.5
    proc = subprocess.Popen(
        [sys.executable, "-m", "tpcloud", "login", "-u", "user@example.com", "--password-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env, cwd=cli.home,
    )
    proc.stdin.write((PASSWORD + "\n").encode())
    proc.stdin.close()
    time.sleep(0.8)
    with open(f"/proc/{proc.pid}/cmdline", "rb") as handle:
        cmdline = handle.read()
    assert proc.wait(timeout=30) == 0
    populated_cloud.delay = 0
    assert b"tpcloud" in cmdline and PASSWORD.encode() not in cmdline


def test_logout_removes_every_secret_and_the_cache(account, populated_cloud):
    account("list")
    assert (account.cache_dir / "devices.json").exists()
    result = account("logout")
    assert result.code == 0
    assert not account.cache_dir.exists()
    remaining = b"".join(account.files().values())
    for secret in populated_cloud.secrets():
        assert secret.encode() not in remaining
    for value in populated_cloud.terminal_uuids:
        assert value.encode() not in remaining
    after = account("list")
    assert after.code == 3


# -- hostile or broken answers ----------------------------------------------------------------


def test_an_oversized_reply_is_refused(account, populated_cloud):
    account("list")
    populated_cloud.fail_next_http("passthrough", status=200, body=b" " * (5 * 2**20), content_type="application/json")
    result = account("switch", "Desk Lamp", "on")
    assert result.code == 8 and "larger than 4 MiB" in one_line(result.stderr)


def test_an_endless_reply_without_a_length_is_cut_off(cli):
    """A server that streams chunks forever: the client stops at its bound, not at memory's end."""
    with EndlessReplyServer() as server:
        result = cli("login", "-u", "a@b.c", "--password-stdin", input="pw\n", env={"TPCLOUD_CLOUD_URL": server.url})
    assert result.code == 8 and "larger than 4 MiB" in one_line(result.stderr)


def test_a_certificate_that_does_not_verify_is_refused(cli, tmp_path):
    """TLS is never switched off: a server with a self-signed certificate is not talked to."""
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        handshakes = []

        def serve() -> None:
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = server.accept()
                    handshakes.append(conn)
                    with contextlib.suppress(OSError, ssl.SSLError), context.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)

        threading.Thread(target=serve, daemon=True).start()
        url = "https://127.0.0.1:%d" % server.getsockname()[1]
        result = cli("login", "-u", "a@b.c", "--password-stdin", input="pw\n", env={"TPCLOUD_CLOUD_URL": url})
    assert result.code == 7 and "certificate verify failed" in one_line(result.stderr)
    assert len(handshakes) == 1  # a certificate that failed once is not asked again


def test_a_cloud_name_that_does_not_resolve(cli, tmp_path):
    """The resolver's failure is simulated in the process, so no DNS query leaves the machine."""
    (tmp_path / "nodns").mkdir()
    (tmp_path / "nodns" / "sitecustomize.py").write_text(
        "import socket\n"
        "def _fail(*args, **kwargs):\n"
        "    raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')\n"
        "socket.getaddrinfo = _fail\n"
    )
    env = {"TPCLOUD_CLOUD_URL": "https://nowhere.tplinkcloud.com", "PYTHONPATH": f"{tmp_path / 'nodns'}:{cli.env['PYTHONPATH']}"}
    started = time.monotonic()
    result = cli("login", "-u", "a@b.c", "--password-stdin", input="pw\n", env=env)
    assert result.code == 7
    line = one_line(result.stderr)
    assert "nowhere.tplinkcloud.com" in line and "Name or service not known" in line
    assert time.monotonic() - started < 15


def test_an_app_server_elsewhere_never_receives_the_token(account, populated_cloud):
    populated_cloud.cloud_device(populated_cloud.by_alias["Desk Lamp"]).app_server_url = "https://wap.tplinkcloud.com.example.net"
    account("list", "--refresh")
    populated_cloud.clear_requests()
    result = account("switch", "Desk Lamp", "on", "--via", "cloud")
    assert result.code == 8
    assert "refusing to send the cloud token to https://wap.tplinkcloud.com.example.net" in one_line(result.stderr)
    assert populated_cloud.count("passthrough") == 0


def self_signed_certificate(folder) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path)
