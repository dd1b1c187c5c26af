"""Model cache and downloads, against a real HTTP server on 127.0.0.1 (good file, wrong checksum,
transfer cut then resumed, server down, unpinned hash), plus registry look-ups and licences."""
from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from dataclasses import replace

import pytest

from gpurelief.depth import cache
from gpurelief.depth.registry import MODELS, check_licence, get_model
from gpurelief.errors import ModelError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, so the cut lands mid-file
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append(self.headers.get("Range"))
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.ranges:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cut_next:
            srv.cut_next = False
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.requests, srv.cut_next, srv.ranges = [], False, True
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GPURELIEF_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _spec(server, sha=SHA, size=len(PAYLOAD)):
    return replace(MODELS["depth-anything-v2-small"], url=f"http://127.0.0.1:{server.server_port}/model.onnx",
                   sha256=sha, size_bytes=size)


def test_home_dir_follows_gpurelief_home(home):
    assert cache.home_dir() == home and cache.models_dir() == home / "models" and cache.engines_dir() == home / "engines"


def test_good_download_is_verified_and_renamed_into_place(server, home):
    spec = _spec(server)
    path = cache.download(spec)
    assert path == home / "models" / spec.filename and path.read_bytes() == PAYLOAD
    assert not path.with_name(path.name + ".part").exists()
    assert cache.locate(spec) == path and cache.verify(spec, path) == "verified"
    cache.download(spec)  # already there: no second request
    assert len(server.requests) == 1


def test_wrong_checksum_deletes_the_file_and_says_so(server, home):
    spec = _spec(server, sha="0" * 64)
    with pytest.raises(ModelError, match=f"has sha256 {SHA}, expected 0{{64}}; it was deleted"):
        cache.download(spec)
    assert not any((home / "models").iterdir())


def test_cut_transfer_keeps_the_part_and_resumes_with_a_range_request(server, home):
    spec = _spec(server)
    server.cut_next = True
    with pytest.raises(ModelError, match="stopped at .* bytes.*rerun `gpurelief models pull depth-anything-v2-small` to resume"):
        cache.download(spec)
    part = home / "models" / (spec.filename + ".part")
    have = part.stat().st_size
    assert 0 < have < len(PAYLOAD) and not cache.model_path(spec).exists()
    path = cache.download(spec)
    assert server.requests == [None, f"bytes={have}-"]
    assert path.read_bytes() == PAYLOAD and not part.exists()


def test_resume_restarts_when_the_server_ignores_range(server, home):
    spec = _spec(server)
    server.cut_next, server.ranges = True, False
    with pytest.raises(ModelError):
        cache.download(spec)
    assert cache.download(spec).read_bytes() == PAYLOAD


def test_server_down_names_the_url_and_where_to_put_the_file(home):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    spec = replace(MODELS["midas-v2.1-small"], url=f"http://127.0.0.1:{port}/model-small.onnx", sha256=SHA,
                   size_bytes=len(PAYLOAD))
    dest = home / "models" / spec.filename
    with pytest.raises(ModelError, match=rf"cannot download {spec.url} .*put it at {dest}") as err:
        cache.download(spec, timeout_s=5)
    assert "Offline?" in str(err.value)


def test_unpinned_hash_needs_allow_unverified_then_is_recorded_and_enforced(server, home):
    spec = _spec(server, sha=None)
    with pytest.raises(ModelError, match="no sha256 is pinned.*--allow-unverified"):
        cache.download(spec)
    path = cache.download(spec, allow_unverified=True)
    assert cache.recorded_sha256(path) == SHA and cache.verify(spec, path) == "recorded"
    path.write_bytes(PAYLOAD[:-1] + b"\x00")
    with pytest.raises(ModelError, match="does not match the expected .*delete it and run `gpurelief models pull"):
        cache.locate(spec)


def test_missing_model_error_names_pull_url_and_path(home):
    spec = MODELS["depth-anything-v2-small"]
    with pytest.raises(ModelError, match=rf"not downloaded yet; run `gpurelief models pull {spec.name}` or put {spec.url}.* at {home}"):
        cache.locate(spec)


def test_registry_names_licences_and_facts():
    assert get_model("depth-anything-v2-small").licence == "Apache-2.0"
    assert get_model("midas-v2.1-small").licence == "MIT"
    fp16 = get_model("depth-anything-v2-small-fp16")
    assert fp16.precision == "fp16" and fp16.url.endswith("/onnx/model_fp16.onnx")
    for spec in MODELS.values():
        assert spec.output in ("inverse_depth", "depth") and spec.url.startswith("https://")
        assert spec.sha256 is None or len(spec.sha256) == 64
    with pytest.raises(ModelError, match="no model named 'dav2'.*known: depth-anything-v2-small"):
        get_model("dav2")
    nc = get_model("depth-anything-v2-large")
    with pytest.raises(ModelError, match="CC-BY-NC-4.0.*--accept-license depth-anything-v2-large"):
        check_licence(nc)
    check_licence(nc, ("depth-anything-v2-large",))
    check_licence(get_model("depth-anything-v2-small"))


def test_verification_is_remembered_until_the_file_changes(server, home):
    spec = _spec(server)
    path = cache.download(spec)
    assert cache.verify(spec, path) == "verified"
    assert path.with_name(path.name + ".verified").exists()
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, new mtime: hashed again and caught
    with pytest.raises(ModelError, match="does not match"):
        cache.verify(spec, path)


def test_a_file_put_in_the_cache_by_hand_is_accepted_then_pinned_locally(home):
    spec = MODELS["depth-anything-v2-base"]  # no pinned hash
    path = cache.model_path(spec)
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    assert cache.locate(spec) == path and cache.recorded_sha256(path) == SHA
    path.write_bytes(PAYLOAD[::-1])
    with pytest.raises(ModelError, match="does not match"):
        cache.locate(spec)


def test_a_wrong_size_is_refused_before_hashing_and_the_file_deleted(server, home):
    spec = _spec(server, size=len(PAYLOAD) + 1)
    with pytest.raises(ModelError, match=f"is {len(PAYLOAD):,} bytes, expected {len(PAYLOAD) + 1:,}; it was deleted"):
        cache.download(spec)
    assert not any((home / "models").iterdir())


def test_a_part_longer_than_the_pinned_size_is_not_resumed(server, home):
    spec = _spec(server)
    part = home / "models" / (spec.filename + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD + b"junk")
    assert cache.download(spec).read_bytes() == PAYLOAD
    assert server.requests == [None]  # started over: no Range request for a part that cannot be a prefix


def test_a_file_put_by_hand_for_a_pinned_model_is_checked_against_the_pin(home):
    spec = MODELS["midas-v2.1-small"]
    path = cache.model_path(spec)
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    with pytest.raises(ModelError, match=f"sha256 {SHA} does not match the expected {spec.sha256}"):
        cache.locate(spec)
    assert cache.recorded_sha256(path) is None  # a pinned model never falls back to trust-on-first-use


def test_the_issue_models_are_pinned_to_a_commit_or_release_with_hash_and_size():
    for name in ("depth-anything-v2-small", "depth-anything-v2-small-fp16", "midas-v2.1-small"):
        spec = get_model(name)
        assert spec.pinned and spec.revision in spec.url and spec.revision != "main"
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
        assert spec.size_bytes and abs(spec.size_bytes / 1e6 - spec.size_mb) < 0.1
    da2, fp16 = get_model("depth-anything-v2-small"), get_model("depth-anything-v2-small-fp16")
    assert da2.revision == fp16.revision and da2.sha256 != fp16.sha256
    for name in ("depth-anything-v2-base", "depth-anything-v2-large"):  # honestly unpinned
        assert get_model(name).sha256 is None and not get_model(name).pinned
