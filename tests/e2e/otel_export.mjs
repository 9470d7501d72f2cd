// Sends one SERVER span through the official OTLP/HTTP exporter to argv[2], as a child of the
// remote parent traceparent argv[3], with an event and an attribute: test_tracing.py compares what
// it sends with celer's spans field by field. argv[4] "proto" picks the protobuf exporter
// (@opentelemetry/exporter-trace-otlp-proto), else JSON (@opentelemetry/exporter-trace-otlp-http).
// Run with NODE_PATH pointing at the node_cache folder.
import { createRequire } from "module";
const require = createRequire(process.env.NODE_PATH + "/");
const [url, traceparent, encoding] = process.argv.slice(2);
const { OTLPTraceExporter } = require(encoding === "proto" ? "@opentelemetry/exporter-trace-otlp-proto"
  : "@opentelemetry/exporter-trace-otlp-http");
const { BasicTracerProvider, SimpleSpanProcessor } = require("@opentelemetry/sdk-trace-base");
const { defaultResource, resourceFromAttributes } = require("@opentelemetry/resources");
const api = require("@opentelemetry/api");

const [, traceId, spanId, flags] = traceparent.split("-");
const exporter = new OTLPTraceExporter({ url });
const provider = new BasicTracerProvider({
  resource: defaultResource().merge(resourceFromAttributes({ "service.name": "otel-reference" })),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const tracer = provider.getTracer("celer-reference", "1.0.0");
const parent = api.trace.setSpanContext(api.context.active(),
  { traceId, spanId, traceFlags: parseInt(flags, 16), isRemote: true });
const span = tracer.startSpan("POST /v2/models/m/infer", { kind: api.SpanKind.SERVER,
  attributes: { "celer.model": "m", "http.response.status_code": 200 } }, parent);
span.addEvent("queued");
span.addEvent("batch formed", { "celer.batch_size": 1 });
span.end();
await provider.forceFlush();
await provider.shutdown();
