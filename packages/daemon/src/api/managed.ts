import type { FastifyRequest } from "fastify";
import type { ManagedObject, StateObjectKind } from "@townos/api";

/**
 * A route's `managed` option: the object of `kind` that `name` reads from the
 * request's path (the same function that names the audit entry's target);
 * undefined when the path names nothing git can declare.
 */
export function managedAs(
  kind: StateObjectKind,
  name: (request: FastifyRequest) => string | undefined,
): (request: FastifyRequest) => ManagedObject | undefined {
  return (request) => {
    const found = name(request);
    return found === undefined ? undefined : { kind, name: found };
  };
}
