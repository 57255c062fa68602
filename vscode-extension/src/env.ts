// What the client's parts share: the connection, the run store, the Accept previews, the log and
// the prompts. Also the API `activate` returns (the end-to-end tests drive the client through it).

import * as vscode from 'vscode';
import { PreviewDocuments } from './accept';
import { ServerConnection } from './connection';
import { LogChannel } from './log';
import { RunTracker } from './logic';
import { RunStore } from './runs';
import type { TaskTests } from './tasks-tests';
import { Prompts } from './ui';

type Json = Record<string, unknown>;

export interface Env {
  readonly context: vscode.ExtensionContext;
  readonly conn: ServerConnection;
  readonly store: RunStore;
  readonly previews: PreviewDocuments;
  readonly log: LogChannel;
  prompts: Prompts;
  /** The last Accept diff shown (left: target, right: the server's text). */
  lastDiff?: { left: vscode.Uri; right: vscode.Uri; after: string };
  /** The last status line Accept showed. */
  lastStatus?: string;
}

/** What `activate` returns: used by the end-to-end tests (and other extensions) to drive the client. */
export interface CodeActApi {
  /** Resolves once the server answered `initialize`; rejects with the reason it could not start. */
  ready(): Promise<void>;
  readonly runs: RunTracker;
  /** Resolves with the run's final status once the server reports a terminal one. */
  waitForRun(runId: string, timeoutMs?: number): Promise<string>;
  /** Replace to answer the client's questions in tests. */
  prompts: Prompts;
  /** The last Accept diff shown (left: target, right: the server's text). */
  lastDiff?: { left: vscode.Uri; right: vscode.Uri; after: string };
  /** The last status line Accept showed. */
  lastStatus?: string;
  /** The server's `workspace/executeCommand`, bypassing the client's prompts. */
  server(command: string, arg?: Json): Promise<unknown>;
  /** Commands this window sent to the server, in order. */
  readonly sent: readonly string[];
  /** The last lines of the CodeAct output channel. */
  readonly logLines: readonly string[];
  /** The status bar's text now. */
  readonly statusText: string;
  /** The install command last offered for a missing server. */
  readonly installCommand?: string;
  /** The task suite in the Testing view. */
  readonly taskTests: TaskTests;
  /** The Runs view's tree items now, as shown. */
  runItems(): vscode.TreeItem[];
}
