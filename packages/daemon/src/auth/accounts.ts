import { TownError } from "@townos/format";
import type { Clock } from "../clock.js";
import { sql, type Db } from "../store/database.js";
import { Passwords } from "./passwords.js";

export type Role = "admin" | "user";

export interface Account {
  id: number;
  username: string;
  email: string | null;
  role: Role;
  disabled: boolean;
  createdAt: number;
}

interface AccountRow {
  id: number;
  username: string;
  email: string | null;
  password_hash: string;
  role: Role;
  disabled: number;
  created_at: number;
}

export const USERNAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/;
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}$/;

export interface NewAccount {
  username: string;
  password: string;
  email?: string | undefined;
  role: Role;
}

/**
 * People who may use the box. The first account is created by the first-run
 * setup and is an administrator; later ones only by administrators.
 */
export class Accounts {
  /** Verified against when a username does not exist, so both paths cost the same. */
  private decoyHash: Promise<string> | undefined;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    readonly passwords = new Passwords(),
  ) {}

  count(): number {
    return (sql(this.db, "SELECT COUNT(*) AS n FROM accounts").get() as { n: number }).n;
  }

  get setupNeeded(): boolean {
    return this.count() === 0;
  }

  /** First-run: creates the first administrator, and only while there is no account at all. */
  async setup(account: Omit<NewAccount, "role">): Promise<Account> {
    // Checked before hashing too, so a set-up box does no password work for anybody.
    this.checkSetupNeeded();
    const passwordHash = await this.validate({ ...account, role: "admin" });
    // Check and insert in one transaction: two racing setups cannot both win.
    return this.db.transaction(() => {
      this.checkSetupNeeded();
      return this.insert({ ...account, role: "admin" }, passwordHash);
    })();
  }

  /** Throws `already_set_up` once any account exists. */
  checkSetupNeeded(): void {
    if (!this.setupNeeded)
      throw new TownError("already_set_up", "Town OS is already set up; sign in instead");
  }

  async create(account: NewAccount): Promise<Account> {
    const passwordHash = await this.validate(account);
    return this.insert(account, passwordHash);
  }

  private async validate(account: NewAccount): Promise<string> {
    if (!USERNAME.test(account.username)) {
      throw new TownError(
        "invalid_argument",
        "a username is 1-64 letters, digits, '.', '_' or '-'",
        {
          issues: [{ field: "username", message: "letters, digits, '.', '_' or '-'" }],
        },
      );
    }
    if (account.email !== undefined && account.email !== "" && !EMAIL.test(account.email)) {
      throw new TownError("invalid_argument", "that is not an e-mail address", {
        issues: [{ field: "email", message: "not an e-mail address" }],
      });
    }
    return this.passwords.hash(account.password);
  }

  private insert(account: NewAccount, passwordHash: string): Account {
    try {
      const row = sql(
        this.db,
        `INSERT INTO accounts (username, email, password_hash, role, created_at)
           VALUES (?, ?, ?, ?, ?) RETURNING *`,
      ).get(
        account.username,
        account.email || null,
        passwordHash,
        account.role,
        this.clock(),
      ) as AccountRow;
      return toAccount(row);
    } catch (error) {
      if (error instanceof Error && /UNIQUE/.test(error.message)) {
        throw new TownError("conflict", `the username "${account.username}" is taken`, {
          issues: [{ field: "username", message: "taken" }],
        });
      }
      throw error;
    }
  }

  /**
   * The account for a username and password, or undefined — never saying
   * which of the two was wrong, and taking as long either way.
   */
  async authenticate(username: string, password: string): Promise<Account | undefined> {
    const row = this.row(username);
    if (!row) {
      await this.passwords.verify(await this.decoy(), password);
      return undefined;
    }
    const ok = await this.passwords.verify(row.password_hash, password);
    return ok && !row.disabled ? toAccount(row) : undefined;
  }

  private decoy(): Promise<string> {
    // A failed first try (the box was busy) must not leave a rejected promise behind for good.
    this.decoyHash ??= this.passwords
      .hash("decoy-password-never-matches")
      .catch((error: unknown) => {
        this.decoyHash = undefined;
        throw error;
      });
    return this.decoyHash;
  }

  private row(username: string): AccountRow | undefined {
    return sql(this.db, "SELECT * FROM accounts WHERE username = ?").get(username) as
      AccountRow | undefined;
  }

  byId(id: number): Account | undefined {
    const row = sql(this.db, "SELECT * FROM accounts WHERE id = ?").get(id) as
      AccountRow | undefined;
    return row && toAccount(row);
  }

  byUsername(username: string): Account {
    const row = this.row(username);
    if (!row) throw new TownError("not_found", `there is no account "${username}"`);
    return toAccount(row);
  }

  list(): Account[] {
    return (sql(this.db, "SELECT * FROM accounts ORDER BY username").all() as AccountRow[]).map(
      toAccount,
    );
  }

  /** Disabling takes effect at once: the session check reads this flag on every request. */
  update(
    username: string,
    change: { disabled?: boolean | undefined; role?: Role | undefined },
  ): Account {
    return this.db.transaction(() => {
      const account = this.byUsername(username);
      const demotes = change.role === "user" || change.disabled === true;
      if (account.role === "admin" && !account.disabled && demotes && this.activeAdmins() === 1) {
        throw new TownError(
          "conflict",
          "the last active administrator cannot be disabled or demoted",
        );
      }
      if (change.disabled !== undefined) {
        sql(this.db, "UPDATE accounts SET disabled = ? WHERE id = ?").run(
          change.disabled ? 1 : 0,
          account.id,
        );
      }
      if (change.role !== undefined) {
        sql(this.db, "UPDATE accounts SET role = ? WHERE id = ?").run(change.role, account.id);
      }
      return this.byUsername(username);
    })();
  }

  async setPassword(username: string, password: string): Promise<void> {
    const account = this.byUsername(username);
    const passwordHash = await this.passwords.hash(password);
    sql(this.db, "UPDATE accounts SET password_hash = ? WHERE id = ?").run(
      passwordHash,
      account.id,
    );
  }

  private activeAdmins(): number {
    return (
      sql(
        this.db,
        "SELECT COUNT(*) AS n FROM accounts WHERE role = 'admin' AND disabled = 0",
      ).get() as {
        n: number;
      }
    ).n;
  }
}

function toAccount(row: AccountRow): Account {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    role: row.role,
    disabled: row.disabled === 1,
    createdAt: row.created_at,
  };
}
