"""The admin dashboard (``/ui/``) served by a TLS admin listener (``--admin-tls-cert``, a private CA's
certificate), in Debian's chromium: the page is a secure context on ``https://``, its API calls and its
push channel (``fetch`` reading a live recording's event stream) go over the same TLS origin, and a live
session's frames appear while a ``websockets`` client talks through the proxy.

Chromium trusts exactly the listener's key (``--ignore-certificate-errors-spki-list`` with its SPKI
hash), not every certificate: a page served with any other certificate would not load.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from pathlib import Path

import pytest

pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.async_api import async_playwright

from browserkit import VIEWPORT, dashboard_url, wait_for_hook, wait_for_marks
from chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium
from configs import mocks_config
from httpclient import acall
from processes import MockdFactory
from upstreams import open_ws, proxy_mock, recv, ws_upstream

require_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

DEADLINE_MS = 10_000


def spki_hash(cert_pem: bytes) -> str:
    """The base64 SHA-256 of the certificate's SubjectPublicKeyInfo, as chromium's pin list takes it."""
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    return base64.b64encode(hashlib.sha256(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
                            .digest()).decode()


async def test_the_dashboard_over_a_tls_admin_listener_follows_a_live_session(mockd: MockdFactory,
                                                                              tmp_path: Path) -> None:
    authority = trustme.CA()
    leaf = authority.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "admin-cert.pem", tmp_path / "admin-key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    async with ws_upstream() as upstream:  # echoes every message
        server = mockd.start(mocks_config(proxy_mock(upstream.url, "/ws")), "--admin-tls-cert", str(cert),
                             "--admin-tls-key", str(key))
        assert server.admin_url.startswith("https://")
        async with async_playwright() as playwright:
            pin = f"--ignore-certificate-errors-spki-list={spki_hash(leaf.cert_chain_pems[0].bytes())}"
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, pin])
            try:
                page = await (await browser.new_context(viewport=VIEWPORT)).new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
                response = await page.goto(dashboard_url(server.admin_url, view="live"))
                assert response is not None and response.status == 200
                assert await page.evaluate("() => window.isSecureContext && location.protocol") == "https:"

                await page.get_by_test_id("start-path").fill("/ws/tls-live")
                await page.get_by_test_id("start-session").click()
                await wait_for_hook(page, "timelineReady", "1", DEADLINE_MS)
                recording_id = await page.get_by_test_id("recording-id").inner_text()
                async with open_ws(server.ws_url("/ws/tls-live")) as ws:
                    for message in ("one", "two", "three"):
                        await ws.send(message)
                        assert await recv(ws) == message
                    assert await wait_for_marks(page, 6, DEADLINE_MS) == 6  # pushed over https as they pass
                await page.get_by_test_id("stop-session").click()
                await page.wait_for_function(
                    "() => document.querySelector('[data-testid=recording-state]').dataset.state === 'complete'",
                    timeout=DEADLINE_MS)
                assert errors == []
            finally:
                await browser.close()
    trusting = ssl.create_default_context(cadata=authority.cert_pem.bytes().decode())
    stored = (await acall("GET", f"{server.admin_url}/stream-recordings/{recording_id}", context=trusting)).json()
    assert [frame["data"] for frame in stored["websocket"]["frames"] if frame["type"] == "text"] == \
        ["one", "one", "two", "two", "three", "three"]
