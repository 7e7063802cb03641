#!/usr/bin/env python3
"""difftx serve end to end on a tiny model: greedy equality with `difftx generate`, the SSE
format, 4xx JSON errors, the API key, /v1/models, /health, and a bounded soak (200 requests,
16 concurrent, some cancelled mid-stream, some malformed), then SIGTERM. Stdlib only; every
socket has a timeout and the server is killed if anything goes wrong."""
import http.client, json, os, random, re, signal, subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor

DIFFTX = sys.argv[1]
TIMEOUT = 10
CONFIG = {"model_type": "diffllama", "vocab_size": 257, "hidden_size": 16, "intermediate_size": 24,
          "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 64}
BYTE_TOKENIZER = {"format": "difftx-tokenizer", "version": 1, "type": "byte", "files": {},
                  "vocab_size": 257, "eos_id": 256, "fingerprint": "byte-a968eb5c4733969b"}
KEY = "sekrit"


def make_model(tmp):
    cfg = os.path.join(tmp, "config.json")
    with open(cfg, "w") as f:
        json.dump(CONFIG, f)
    model = os.path.join(tmp, "tiny")
    subprocess.run([DIFFTX, "init", "--config", cfg, "--out", model, "--seed", "5"], check=True,
                   stdout=subprocess.DEVNULL, timeout=TIMEOUT)
    with open(os.path.join(model, "difftx_tokenizer.json"), "w") as f:
        json.dump(BYTE_TOKENIZER, f)
    return model


def request(port, method, path, body=None, key=KEY, raw=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    text = r.read().decode("utf-8", "replace")
    conn.close()
    return r.status, text


def sse_events(text):
    assert text.endswith("data: [DONE]\n\n"), text[-80:]
    events = [e for e in text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), events
    return [json.loads(e[6:]) for e in events[:-1]]


def expect_error(status, text, code):
    assert status == code, (status, text)
    msg = json.loads(text)["error"]["message"]
    assert isinstance(msg, str) and msg and "\n" not in msg, text


def main():
    tmp = tempfile.mkdtemp(prefix="difftx_serve_")
    model = make_model(tmp)
    proc = subprocess.Popen([DIFFTX, "serve", "--model", model, "--port", "0", "--parallel", "4",
                             "--api-key", KEY], stderr=subprocess.PIPE, text=True)
    log = []
    port_found = threading.Event()

    def read_log():
        for line in proc.stderr:
            log.append(line)
            if re.search(r"http://127\.0\.0\.1:(\d+)", line):
                port_found.set()
    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        assert port_found.wait(TIMEOUT), "the server printed no address: " + "".join(log)
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", log[0]).group(1))
        check_api(port, model)
        rss_warm = rss(proc.pid)
        soak(port)
        rss_after = rss(proc.pid)
        print(f"RSS after warm-up {rss_warm} kB, after soak {rss_after} kB")
        assert rss_after <= rss_warm * 1.10, (rss_warm, rss_after)
        status, text = request(port, "GET", "/health")
        assert status == 200 and json.loads(text)["status"] == "ok", text
        assert proc.poll() is None, "the server died"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0, "serve did not exit 0 on SIGTERM"
        reader.join(TIMEOUT)
        assert any("stopping" in line for line in log), "".join(log)
        assert any("POST /v1/completions -> 200" in line for line in log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print("serve: all checks passed")


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def generate_cli(model, prompt, n):
    out = subprocess.run([DIFFTX, "generate", "--model", model, "--prompt", prompt, "--temperature",
                          "0", "--max-tokens", str(n)], check=True, capture_output=True,
                         timeout=TIMEOUT).stdout
    assert out.endswith(b"\n")
    return out[:-1].decode("utf-8", "replace")


def check_api(port, model):
    # Greedy over HTTP equals `difftx generate --temperature 0`, plain and streamed.
    for prompt, n in [("Hello", 12), ("The quick brown fox", 20), ("a", 1)]:
        want = generate_cli(model, prompt, n)
        status, text = request(port, "POST", "/v1/completions",
                               {"prompt": prompt, "max_tokens": n, "temperature": 0})
        assert status == 200, text
        j = json.loads(text)
        assert j["object"] == "text_completion" and j["choices"][0]["text"] == want, (j, want)
        assert j["usage"]["completion_tokens"] <= n
        status, text = request(port, "POST", "/v1/completions",
                               {"prompt": prompt, "max_tokens": n, "temperature": 0, "stream": True})
        assert status == 200, text
        events = sse_events(text)
        assert "".join(e["choices"][0]["text"] for e in events) == want
        assert events[-1]["choices"][0]["finish_reason"] in ("length", "stop")
    # A list of prompts: one choice each, in order.
    status, text = request(port, "POST", "/v1/completions",
                           {"prompt": ["Hello", "a"], "max_tokens": 5, "temperature": 0,
                            "unknown_field": {"x": 1}})
    assert status == 200, text
    choices = json.loads(text)["choices"]
    assert [c["text"] for c in choices] == [generate_cli(model, "Hello", 5), generate_cli(model, "a", 5)]
    # Seeded sampling repeats itself.
    body = {"prompt": "Hello", "max_tokens": 8, "temperature": 1.0, "top_p": 0.9, "seed": 7}
    first, again = (json.loads(request(port, "POST", "/v1/completions", body)[1])["choices"]
                    for _ in range(2))
    assert first == again, (first, again)
    # A stop string cuts the text before it.
    full = generate_cli(model, "Hello", 12)
    if len(full) > 4:
        stop = full[3:5]
        status, text = request(port, "POST", "/v1/completions",
                               {"prompt": "Hello", "max_tokens": 12, "temperature": 0, "stop": stop})
        c = json.loads(text)["choices"][0]
        assert c["text"] == full[:full.find(stop)] and c["finish_reason"] == "stop", (c, full, stop)
    # Errors: 4xx with a JSON message.
    for body in ["{", "[1,2]", '"x"', json.dumps({"max_tokens": 3}),
                 json.dumps({"prompt": 5}), json.dumps({"prompt": ["a", 3]}),
                 json.dumps({"prompt": "a", "max_tokens": -1}),
                 json.dumps({"prompt": "a", "max_tokens": "3"}),
                 json.dumps({"prompt": "a", "temperature": -1}),
                 json.dumps({"prompt": "a", "top_p": 0}),
                 json.dumps({"prompt": "a", "stream": "yes"}),
                 json.dumps({"prompt": "a", "stop": [""]}),
                 json.dumps({"prompt": "a", "max_tokens": 64}),
                 json.dumps({"prompt": "x" * 64}),
                 json.dumps({"prompt": "a", "seed": -3})]:
        status, text = request(port, "POST", "/v1/completions", raw=body)
        expect_error(status, text, 400)
    expect_error(*request(port, "POST", "/v1/completions", {"prompt": "a"}, key=None), 401)
    expect_error(*request(port, "POST", "/v1/completions", {"prompt": "a"}, key="wrong"), 401)
    expect_error(*request(port, "GET", "/v1/models", key=None), 401)
    expect_error(*request(port, "POST", "/v1/chat/completions", {"messages": []}), 400)
    expect_error(*request(port, "GET", "/nowhere"), 404)
    status, text = request(port, "GET", "/v1/models")
    assert status == 200 and json.loads(text)["data"][0]["id"] == "tiny", text
    status, text = request(port, "GET", "/health", key=None)
    assert status == 200 and json.loads(text)["status"] == "ok", text


def cancelled_stream(port):
    """Reads the first event of a long stream, then hangs up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request("POST", "/v1/completions",
                 body=json.dumps({"prompt": "cancel me", "max_tokens": 50, "stream": True}),
                 headers={"Authorization": "Bearer " + KEY})
    r = conn.getresponse()
    assert r.status == 200
    assert r.read(6) == b"data: "
    conn.sock.close()
    conn.close()
    return "cancelled"


def soak_one(port, i):
    rnd = random.Random(i)
    kind = i % 5
    if kind == 0:
        return cancelled_stream(port)
    if kind == 1:
        bad = rnd.choice(["{nope", json.dumps({"prompt": "a", "max_tokens": -5}),
                          json.dumps({"prompt": None}), json.dumps({"prompt": "a", "top_p": "x"})])
        status, text = request(port, "POST", "/v1/completions", raw=bad)
        expect_error(status, text, 400)
        return "malformed"
    body = {"prompt": "soak %d" % i, "max_tokens": rnd.randint(1, 20), "temperature": rnd.choice([0, 0.8]),
            "seed": i, "stream": kind == 2}
    status, text = request(port, "POST", "/v1/completions", body)
    assert status == 200, text
    if kind == 2:
        assert sse_events(text)[-1]["choices"][0]["finish_reason"] in ("length", "stop")
    else:
        assert json.loads(text)["choices"][0]["finish_reason"] in ("length", "stop")
    return "ok"


def soak(port):
    with ThreadPoolExecutor(16) as pool:  # warm-up: the allocator reaches its working size
        list(pool.map(lambda i: soak_one(port, i), range(1000, 1032)))
    start = time.time()
    with ThreadPoolExecutor(16) as pool:
        kinds = list(pool.map(lambda i: soak_one(port, i), range(200)))
    print(f"soak: {len(kinds)} requests in {time.time() - start:.1f} s:",
          {k: kinds.count(k) for k in set(kinds)})
    # Cancelled streams have left their rows: the server is idle again.
    for _ in range(50):
        j = json.loads(request(port, "GET", "/health")[1])
        if j["active"] == 0 and j["queued"] == 0:
            return
        time.sleep(0.1)
    raise AssertionError("rows still busy after the soak: %s" % j)


if __name__ == "__main__":
    main()
