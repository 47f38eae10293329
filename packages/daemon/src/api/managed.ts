import type { FastifyRequest } from "fastify";
import type { ManagedObject, StateObjectKind } from "@townos/api";

/**
 * A route's `managed` option: the object of `kind` that `name` reads from the
 * request's path (the same function that names the audit entry's target).
 */
export function managedAs(
  kind: StateObjectKind,
  name: (request: FastifyRequest) => string,
): (request: FastifyRequest) => ManagedObject {
  return (request) => ({ kind, name: name(request) });
}
