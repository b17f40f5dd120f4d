"""Vigil's OTLP encoders against OpenTelemetry's own decoder: the protobuf body that
otlp_send writes decodes with @opentelemetry/otlp-transformer to exactly the spans it
was built from, re-encodes to the same bytes, and the OTLP/JSON body says the same."""

import json
import subprocess
import unittest

from harness import Sandbox, binary, node_decode


HAS_IS_REMOTE = 0x100
IS_REMOTE = 0x200


def s(v):
    return {"stringValue": v}


def i(v):
    return {"intValue": str(v)}


def d(v):
    return {"doubleValue": v}


def b(v):
    return {"boolValue": v}


def arr(*values):
    return {"arrayValue": {"values": list(values)} if values else {}}


def kv(key, value):
    return {"key": key, "value": value}


# What otlp_send's fixed batch must look like in the OTLP/JSON mapping (telemetry/examples/
# otlp_send.cpp builds it): every field written out by hand from the spec, not from Vigil.
EXPECTED = {
    "resourceSpans": [{
        "resource": {"attributes": [
            kv("service.name", s("otlp-send")),
            kv("service.version", s("1.2.3")),
            kv("deployment.environment.name", s("test")),
            kv("service.instance.id", s("instance-1")),
            kv("host.cores", i(2)),
        ]},
        "scopeSpans": [{
            "scope": {"name": "vigil", "version": "0.1.0-test"},
            "spans": [
                {
                    "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "spanId": "00f067aa0ba902b7",
                    "traceState": "vendor=abc,other=x y",
                    "parentSpanId": "53995c3f42cd8ad8",
                    "flags": 0x01 | HAS_IS_REMOTE | IS_REMOTE,
                    "name": "GET /items/{id}",
                    "kind": 2,
                    "startTimeUnixNano": "1700000000123456789",
                    "endTimeUnixNano": "1700000000223456789",
                    "attributes": [
                        kv("http.request.method", s("GET")),
                        kv("http.response.status_code", i(200)),
                        kv("big", i(9223372036854775807)),
                        kv("negative", i(-42)),
                        kv("zero", i(0)),
                        kv("ratio", d(0.25)),
                        kv("neg.double", d(-1.5e300)),
                        kv("cache.hit", b(True)),
                        kv("retry", b(False)),
                        kv("empty", s("")),
                        kv("unicode", s("h\u00e9llo w\u00f6rld \u2713 \U0001F600")),
                        kv("quote", s("say \"hi\"\n\ttab\\ \x01")),
                        kv("array.strings", arr(s("a"), s("b"))),
                        kv("array.ints", arr(i(1), i(-2), i(3))),
                        kv("array.doubles", arr(d(1.5), d(2.0))),
                        kv("array.bools", arr(b(True), b(False))),
                        kv("array.mixed", arr(s("x"), i(1), d(2.5), b(True), arr(s("nested")))),
                        kv("array.empty", arr()),
                    ],
                    "droppedAttributesCount": 3,
                    "events": [
                        {"timeUnixNano": "1700000000150000000", "name": "exception",
                         "attributes": [kv("exception.type", s("std::runtime_error")),
                                        kv("exception.message", s("boom"))]},
                        {"timeUnixNano": "1700000000160000000", "name": "no-attrs"},
                    ],
                    "droppedEventsCount": 1,
                    "links": [
                        {"traceId": "0af7651916cd43dd8448eb211c80319c",
                         "spanId": "b7ad6b7169203331",
                         "traceState": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
                         "attributes": [kv("link.kind", s("follows"))],
                         "flags": 0x01 | HAS_IS_REMOTE | IS_REMOTE},
                        {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
                         "spanId": "2222222222222222",
                         "flags": HAS_IS_REMOTE},
                    ],
                    "droppedLinksCount": 2,
                    "status": {"message": "boom happened", "code": 2},
                },
                {
                    "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "spanId": "1111111111111111",
                    "parentSpanId": "00f067aa0ba902b7",
                    "flags": 0x03 | HAS_IS_REMOTE,
                    "name": "GET",
                    "kind": 3,
                    "startTimeUnixNano": "1700000000130000000",
                    "endTimeUnixNano": "1700000000140000000",
                    "attributes": [kv("server.address", s("catalog")),
                                   kv("server.port", i(8082))],
                    "status": {"code": 1},
                },
                {
                    "traceId": "5bf92f3577b34da6a3ce929d0e0e4737",
                    "spanId": "3333333333333333",
                    "flags": 0x01 | HAS_IS_REMOTE,
                    "name": "publish orders",
                    "kind": 4,
                    "startTimeUnixNano": "1700000001000000000",
                    "endTimeUnixNano": "1700000001000000001",
                },
                {
                    "traceId": "5bf92f3577b34da6a3ce929d0e0e4737",
                    "spanId": "4444444444444444",
                    "parentSpanId": "3333333333333333",
                    "flags": 0x01 | HAS_IS_REMOTE | IS_REMOTE,
                    "name": "process orders",
                    "kind": 5,
                    "startTimeUnixNano": "1700000002000000000",
                    "endTimeUnixNano": "1700000003000000000",
                },
                {
                    "traceId": "6bf92f3577b34da6a3ce929d0e0e4738",
                    "spanId": "5555555555555555",
                    "flags": HAS_IS_REMOTE,
                    "kind": 1,
                },
            ],
        }],
    }],
}


class OtlpDecodeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox()
        cls.protobuf = cls.sandbox.dir / "body.bin"
        cls.json = cls.sandbox.dir / "body.json"
        subprocess.run([binary("telemetry/examples/otlp_send"), "encode",
                        "--protobuf", str(cls.protobuf), "--json", str(cls.json)],
                       check=True, timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.sandbox.close()

    def assert_request(self, actual):
        # Span by span first, so that a failure points at the span that differs.
        expected_spans = EXPECTED["resourceSpans"][0]["scopeSpans"][0]["spans"]
        actual_spans = actual["resourceSpans"][0]["scopeSpans"][0]["spans"]
        self.assertEqual(len(actual_spans), len(expected_spans))
        for n, (got, want) in enumerate(zip(actual_spans, expected_spans)):
            self.assertEqual(got, want, f"span {n}")
        self.assertEqual(actual, EXPECTED)

    def test_protobuf_decodes_with_opentelemetry_decoder(self):
        decoded = node_decode(self.protobuf)
        self.assert_request(decoded["request"])

    def test_protobuf_is_canonical(self):
        # Re-encoding what was decoded gives the same bytes: fields in number order,
        # minimal varints, defaults omitted, exactly as protobufjs writes them.
        self.assertTrue(node_decode(self.protobuf)["reencodedEqual"])

    def test_json_body_follows_otlp_json_mapping(self):
        text = self.json.read_text(encoding="utf-8")
        self.assertNotIn("\n", text, "one request per line")
        self.assert_request(json.loads(text))

    def test_json_and_protobuf_carry_the_same_content(self):
        self.assertEqual(json.loads(self.json.read_text(encoding="utf-8")),
                         node_decode(self.protobuf)["request"])


if __name__ == "__main__":
    unittest.main()
