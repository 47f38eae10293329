import type { FastifyReply, FastifyRequest } from "fastify";
import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";

const startTimes = new WeakMap<FastifyRequest, bigint>();

/** Prometheus metrics of the daemon: process figures and per-route request counts and latencies. */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: "town_http_requests_total",
    help: "HTTP requests answered, by method, route and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: "town_http_request_duration_seconds",
    help: "Time to answer HTTP requests, by method and route",
    labelNames: ["method", "route"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "town_" });
  }

  started(request: FastifyRequest): void {
    startTimes.set(request, process.hrtime.bigint());
  }

  finished(request: FastifyRequest, reply: FastifyReply): void {
    const start = startTimes.get(request);
    // Unknown URLs share one label: a scan must not grow the label set without bound.
    const route = request.routeOptions.url ?? "unmatched";
    this.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    if (start !== undefined) {
      this.latency.observe(
        { method: request.method, route },
        Number(process.hrtime.bigint() - start) / 1e9,
      );
    }
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
