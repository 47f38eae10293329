import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import {
  AddBackupTargetBody,
  AddBackupTargetResultSchema,
  BackupOverviewSchema,
  BackupPolicyViewSchema,
  BackupRunViewSchema,
  BackupSubjectParam,
  BackupTargetNameParam,
  BackupTargetViewSchema,
  BackupViewSchema,
  RestoreBackupBody,
  RestoreBackupResultSchema,
  RestoreBoxBody,
  RestoreBoxResultSchema,
  RunBackupBody,
  SetBackupPolicyBody,
  type AddBackupTargetResult,
  type BackupOverview,
  type BackupPolicyView,
  type BackupRunView,
  type BackupTargetView,
  type BackupView,
  type RestoreBackupResult,
  type RestoreBoxResult,
} from "@townos/api";
import { type ApiOptions, services } from "../context.js";

const TargetParams = Type.Object({ name: BackupTargetNameParam });
const SubjectQuery = Type.Object({ subject: BackupSubjectParam });

/** Backups: all admin-only (targets hold credentials; restores replace data). */
export function registerBackupRoutes(api: FastifyInstance, options: ApiOptions): void {
  const backups = () => services(options).backups;

  api.get<{ Reply: BackupOverview }>(
    "/backups",
    {
      config: { access: "admin" },
      schema: {
        summary: "Targets, policies, the newest 50 runs and the subjects whose last run failed",
        response: { 200: BackupOverviewSchema },
      },
    },
    async () => backups().overview(),
  );

  api.get<{ Reply: BackupTargetView[] }>(
    "/backups/targets",
    {
      config: { access: "admin" },
      schema: {
        summary: "Backup targets (locations without credentials) with their last status",
        response: { 200: Type.Array(BackupTargetViewSchema) },
      },
    },
    async () => backups().listTargets(),
  );

  api.post<{ Body: AddBackupTargetBody; Reply: { 201: AddBackupTargetResult } }>(
    "/backups/targets",
    {
      config: {
        access: "admin",
        audit: {
          action: "backup.target.add",
          target: (r) => (r.body as AddBackupTargetBody).name,
          // Never the password or the environment: only what says which target it is.
          detail: (r) => {
            const body = r.body as AddBackupTargetBody;
            return { kind: body.kind, passwordGiven: body.password !== undefined };
          },
        },
      },
      schema: {
        summary:
          "Add a backup target once it is checked (a restic repository is initialised); a restic password made here is answered this once",
        body: AddBackupTargetBody,
        response: { 201: AddBackupTargetResultSchema },
      },
    },
    async (request, reply) => reply.status(201).send(await backups().addTarget(request.body)),
  );

  api.delete<{ Params: { name: string } }>(
    "/backups/targets/:name",
    {
      config: {
        access: "admin",
        audit: {
          action: "backup.target.remove",
          target: (r) => (r.params as { name: string }).name,
        },
      },
      schema: {
        summary: "Forget a backup target (the backups on it stay there)",
        params: TargetParams,
      },
    },
    async (request, reply) => {
      backups().removeTarget(request.params.name);
      return reply.status(204).send();
    },
  );

  api.get<{ Params: { name: string }; Reply: BackupView[] }>(
    "/backups/targets/:name/backups",
    {
      config: { access: "admin" },
      schema: {
        summary: "The backups a target holds, oldest first",
        params: TargetParams,
        response: { 200: Type.Array(BackupViewSchema) },
      },
    },
    async (request) => backups().targetBackups(request.params.name),
  );

  api.put<{ Body: SetBackupPolicyBody; Reply: BackupPolicyView }>(
    "/backups/policies",
    {
      config: {
        access: "admin",
        audit: {
          action: "backup.policy.set",
          target: (r) => (r.body as SetBackupPolicyBody).subject,
        },
      },
      schema: {
        summary: "Set a subject's (app or volume) schedule, keep policy and targets",
        body: SetBackupPolicyBody,
        response: { 200: BackupPolicyViewSchema },
      },
    },
    async (request) => backups().setPolicy(request.body),
  );

  api.delete<{ Querystring: { subject: string } }>(
    "/backups/policies",
    {
      config: {
        access: "admin",
        audit: {
          action: "backup.policy.remove",
          target: (r) => (r.query as { subject: string }).subject,
        },
      },
      schema: {
        summary: "Remove a subject's policy (its restore points and backups stay)",
        querystring: SubjectQuery,
      },
    },
    async (request, reply) => {
      backups().removePolicy(request.query.subject);
      return reply.status(204).send();
    },
  );

  api.post<{ Body: RunBackupBody; Reply: { 202: BackupRunView[] } }>(
    "/backups/run",
    {
      config: {
        access: "admin",
        audit: {
          action: "backup.run",
          target: (r) => (r.body as RunBackupBody | undefined)?.subject ?? "",
        },
      },
      schema: {
        summary:
          "Start backups now (one subject, or every subject with a policy); answered at once with the runs, which go on in the background",
        body: RunBackupBody,
        response: { 202: Type.Array(BackupRunViewSchema) },
      },
    },
    async (request, reply) => reply.status(202).send(await backups().startRuns(request.body)),
  );

  api.post<{ Body: RestoreBackupBody; Reply: RestoreBackupResult }>(
    "/backups/restore",
    {
      config: {
        access: "admin",
        audit: { action: "backup.restore", target: (r) => (r.body as RestoreBackupBody).app },
      },
      schema: {
        summary:
          "Restore an app (version, answers, data) from a backup: in place, as a new app beside it, or onto a box without it",
        body: RestoreBackupBody,
        response: { 200: RestoreBackupResultSchema },
      },
    },
    async (request) => backups().restore(request.body),
  );

  api.post<{ Body: RestoreBoxBody; Reply: RestoreBoxResult }>(
    "/backups/restore-box",
    {
      config: {
        access: "admin",
        audit: { action: "backup.restore-box", target: (r) => (r.body as RestoreBoxBody).target },
      },
      schema: {
        summary:
          "Restore the whole box from a backup of it: package repositories, settings, people's volumes and every app, each part reported",
        body: RestoreBoxBody,
        response: { 200: RestoreBoxResultSchema },
      },
    },
    async (request) => backups().restoreBox(request.body),
  );
}
