/** Test helpers for what a test awaits: a rejection it expects, an async iterable read whole. */
import assert from "node:assert/strict";
import { TownError } from "@townos/format";

type ErrorClass<E extends Error> = new (...args: never[]) => E;

/** The error `promise` rejects with, which must be a `type` (default TownError); fails when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<TownError>;
export async function rejection<E extends Error>(
  promise: Promise<unknown>,
  type: ErrorClass<E>,
): Promise<E>;
export async function rejection(
  promise: Promise<unknown>,
  type: ErrorClass<Error> = TownError,
): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof type, `expected a ${type.name}, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a rejection");
}

/** Everything an async iterable yields, once it ends. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
