import type { FastifyInstance } from "fastify";
import {
  ConsolePasswordSchema,
  SetConsolePasswordBodySchema,
  type ConsolePassword as ConsolePasswordWire,
  type SetConsolePasswordBody,
} from "@townos/api";
import { type ApiOptions, services } from "../context.js";
import { readOsInfo } from "../../system/os-info.js";

/** Root's console password on the Town OS image: administrators only, like everything root can do. */
export function registerConsolePasswordRoutes(api: FastifyInstance, options: ApiOptions): void {
  // The image's console login uses it; elsewhere it is kept but nothing reads it.
  const state = async (): Promise<ConsolePasswordWire> => ({
    set: await services(options).consolePassword.isSet(),
    served: (await readOsInfo(options.osFiles)).image !== null,
  });
  const audit = {
    action: "system.console-password",
    target: () => "root",
    // Nothing of the body: it is the password.
    detail: () => ({}),
  };

  api.get<{ Reply: ConsolePasswordWire }>(
    "/system/console-password",
    {
      config: { access: "admin" },
      schema: {
        summary: "Whether root has a password for the box's own screen and keyboard",
        response: { 200: ConsolePasswordSchema },
      },
    },
    state,
  );

  api.put<{ Body: SetConsolePasswordBody; Reply: ConsolePasswordWire }>(
    "/system/console-password",
    {
      config: { access: "admin", audit },
      schema: {
        summary:
          "Set root's console password (local screen and keyboard only; SSH stays key-only). Kept as a hash on the data pool",
        body: SetConsolePasswordBodySchema,
        response: { 200: ConsolePasswordSchema },
      },
    },
    async (request) => {
      await services(options).consolePassword.set(request.body.password);
      return state();
    },
  );

  api.delete<{ Reply: ConsolePasswordWire }>(
    "/system/console-password",
    {
      config: { access: "admin", audit },
      schema: {
        summary: "Remove root's console password: root is locked again",
        response: { 200: ConsolePasswordSchema },
      },
    },
    async () => {
      await services(options).consolePassword.clear();
      return state();
    },
  );
}
