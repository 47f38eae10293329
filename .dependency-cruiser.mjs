// The import graph stays acyclic, type-only imports included: a cycle means
// two files are one module in disguise, and an ESM cycle can read a binding
// before it is initialised. `npm run lint` runs this over every package.

export default {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "Move what both files need into a third, or merge them.",
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)(dist|node_modules)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      // Workspace packages point their "source" export at src/*.ts.
      conditionNames: ["source", "import", "node", "default"],
      extensions: [".ts", ".tsx", ".js"],
    },
  },
};
