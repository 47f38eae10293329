// @ts-check
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

/** Tests may read fixtures and reach into other packages for a test daemon. */
const notTests = ["**/*.test.ts"];
/** Other packages use the daemon through `@townos/daemon`, never its files. */
const daemonFiles = {
  regex: "^(\\.\\./)+daemon/",
  message: "Import from @townos/daemon, not the daemon's files.",
};

export default defineConfig(
  { ignores: ["**/dist/**", "**/node_modules/**", "**/*.d.ts"] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["eslint.config.js", ".dependency-cruiser.mjs"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    // Small single-purpose files: past this, a file is doing two jobs.
    files: ["packages/*/src/**/*.{ts,tsx}"],
    ignores: notTests,
    rules: { "max-lines": ["error", { max: 600, skipBlankLines: true, skipComments: true }] },
  },
  {
    // The format library is pure: no other workspace, no disk, processes or network.
    files: ["packages/format/src/**/*.ts"],
    ignores: notTests,
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(@townos/|(\\.\\./)+(client|daemon|cli|web)/)",
              message: "@townos/format depends on no other workspace.",
            },
            {
              regex: "^(node:)?(fs|child_process|net|http|https|dgram|worker_threads)(/.*)?$",
              message: "@townos/format does no I/O; its callers read and write.",
            },
          ],
        },
      ],
    },
  },
  {
    // The API contract is schemas and types only: what both the daemon and the client read.
    files: ["packages/api/src/**/*.ts"],
    ignores: notTests,
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(@townos/|(\\.\\./)+(format|client|daemon|cli|web)/)",
              message: "@townos/api depends on no other workspace.",
            },
            {
              regex: "^(node:)?[a-z_]+$",
              message: "@townos/api imports no Node or server modules: the dashboard bundles it.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["packages/{client,web}/src/**/*.{ts,tsx}"],
    ignores: notTests,
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            daemonFiles,
            {
              regex: "^@townos/daemon$",
              message: "Wire types come from @townos/api (or @townos/client), not the daemon.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["packages/cli/src/**/*.ts"],
    ignores: [...notTests, "packages/cli/src/main.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [daemonFiles] }],
    },
  },
  {
    files: ["packages/daemon/src/api/**/*.ts"],
    rules: {
      // Fastify handlers and hooks are async by contract, awaiting or not.
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    files: ["**/*.test.ts"],
    rules: {
      // node:test's describe/it return promises that the runner awaits itself.
      "@typescript-eslint/no-floating-promises": "off",
    },
  },
);
