// The task suite in VS Code's Testing view: one test per `[[task]]` of the workspace's task files,
// run through the server's `codeact.runTasks`; a failure carries the server's message at the task
// and a link to its run. Thin: the names come from the file, the verdicts from the server.

import * as vscode from 'vscode';
import { Env } from './env';
import { findTasks } from './present';
import { SuiteReply, TaskResult } from './protocol';


export class TaskTests implements vscode.Disposable {
  readonly controller = vscode.tests.createTestController('codeact.tasks', 'CodeAct tasks');
  /** The last verdict per test id (the tests read it; the Testing view shows the same). */
  readonly verdicts = new Map<string, { passed: boolean; message: string }>();

  constructor(private readonly env: Env) {
    this.controller.resolveHandler = async () => {
      await this.discover();
    };
    this.controller.createRunProfile('Run', vscode.TestRunProfileKind.Run, (request, token) => this.run(request, token), true);
  }

  dispose(): void {
    this.controller.dispose();
  }

  async discover(): Promise<vscode.TestItem[]> {
    this.controller.items.replace([]);
    const setting = vscode.workspace.getConfiguration('codeact').get<string>('tasks') || undefined;
    const files = await vscode.workspace.findFiles(setting ?? '**/tasks.toml', '**/{node_modules,.venv,.codeact}/**', 10);
    const items: vscode.TestItem[] = [];
    for (const file of files) {
      const doc = await vscode.workspace.openTextDocument(file);
      const suite = this.controller.createTestItem(file.toString(), vscode.workspace.asRelativePath(file), file);
      for (const task of findTasks(doc.getText())) {
        const item = this.controller.createTestItem(`${file.toString()}#${task.name}`, task.name, file);
        item.range = new vscode.Range(task.line, 0, task.line, 0);
        suite.children.add(item);
      }
      this.controller.items.add(suite);
      items.push(suite);
    }
    return items;
  }

  async run(request: vscode.TestRunRequest, token: vscode.CancellationToken): Promise<void> {
    const run = this.controller.createTestRun(request);
    const suites: vscode.TestItem[] = [];
    this.controller.items.forEach((s) => suites.push(s));
    const wanted = request.include ?? suites;
    const byFile = new Map<vscode.TestItem, vscode.TestItem[]>();
    for (const item of wanted) {
      const suite = item.parent ?? item;
      const tests: vscode.TestItem[] = [];
      if (item.parent) {
        tests.push(item);
      } else {
        item.children.forEach((c) => tests.push(c));
      }
      byFile.set(suite, [...(byFile.get(suite) ?? []), ...tests.filter((t) => !request.exclude?.includes(t))]);
    }
    try {
      for (const [suite, tests] of byFile) {
        if (token.isCancellationRequested || !suite.uri) {
          break;
        }
        tests.forEach((t) => run.started(t));
        let result: SuiteReply | undefined;
        try {
          result = await this.env.conn.call('codeact.runTasks', { file: suite.uri.fsPath, names: tests.map((t) => t.label) });
        } catch (e) {
          tests.forEach((t) => run.errored(t, new vscode.TestMessage((e as Error).message)));
          continue;
        }
        const results: TaskResult[] = result?.results ?? [];
        for (const t of tests) {
          const r = results.find((x) => x.name === t.label);
          const ms = typeof r?.duration_s === 'number' ? r.duration_s * 1000 : undefined;
          if (!r) {
            run.skipped(t);
          } else if (r.passed === true) {
            this.verdicts.set(t.id, { passed: true, message: '' });
            run.passed(t, ms);
          } else {
            const message = new vscode.TestMessage(`${String(r.message || r.status)}${r.run_id ? ` (run ${String(r.run_id)}: CodeAct: Open Run)` : ''}`);
            if (t.uri && t.range) {
              message.location = new vscode.Location(t.uri, t.range);
            }
            this.verdicts.set(t.id, { passed: false, message: String(message.message) });
            run.failed(t, message, ms);
          }
        }
      }
    } finally {
      run.end();
    }
  }
}
