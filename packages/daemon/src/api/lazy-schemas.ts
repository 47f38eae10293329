import { AjvCompiler, type ValidatorFactory } from "@fastify/ajv-compiler";
import { SerializerSelector, type SerializerFactory } from "@fastify/fast-json-stringify-compiler";

type Validate = ReturnType<ReturnType<ValidatorFactory>>;
type Serialize = ReturnType<ReturnType<SerializerFactory>>;

/**
 * Fastify's own schema compilers (Ajv, fast-json-stringify), each route's
 * validators and serializers compiled on their first use rather than all at
 * start-up. Compiling about 150 routes' schemas is a third of the daemon's
 * start on a fast machine and seconds on a slow one, while a request pays a
 * few milliseconds once. `compileAll` compiles what is still deferred, so a
 * test finds a broken schema without calling its route.
 */
export interface LazySchemaCompilers {
  buildValidator: ValidatorFactory;
  buildSerializer: SerializerFactory;
  compileAll: () => void;
}

export function lazySchemaCompilers(): LazySchemaCompilers {
  const deferred = new Set<() => unknown>();
  function once<T>(compile: () => T): () => T {
    let compiled: { value: T } | undefined;
    const get = (): T => {
      if (compiled === undefined) {
        compiled = { value: compile() };
        deferred.delete(get);
      }
      return compiled.value;
    };
    deferred.add(get);
    return get;
  }
  const validators = AjvCompiler();
  const serializers = SerializerSelector();
  return {
    buildValidator: (externalSchemas, options) => {
      const compilerFor = validators(externalSchemas, options);
      return (route) => {
        const compiled = once(() => compilerFor(route));
        const validate = (data: unknown, context?: Parameters<Validate>[1]): unknown =>
          compiled()(data, context);
        // Fastify reads `errors` after a failed call, and `schemaEnv` to let
        // Ajv coerce a root value in place: both are the compiled function's.
        Object.defineProperties(validate, {
          errors: { get: () => compiled().errors },
          schemaEnv: { get: () => compiled().schemaEnv },
        });
        return validate as Validate;
      };
    },
    buildSerializer: (externalSchemas, options) => {
      const compilerFor = serializers(externalSchemas, options);
      return (route) => {
        const compiled = once(() => compilerFor(route));
        return ((data: unknown) => compiled()(data)) as Serialize;
      };
    },
    compileAll: () => {
      for (const compile of [...deferred]) compile();
    },
  };
}
