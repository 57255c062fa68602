// The "CodeAct" output channel, with what is noise to a user left out: pygls warns about every
// `$/cancelRequest` that arrives after its request was answered ("Cancel notification for unknown
// message id"), which VS Code sends routinely. The last lines are kept for the tests.

import * as vscode from 'vscode';
import { isLogNoise, logLine } from './present';

export class LogChannel implements vscode.OutputChannel {
  readonly name: string;
  /** The last lines written (newest last). */
  readonly tail: string[] = [];
  private pending = '';

  constructor(private readonly channel: vscode.OutputChannel) {
    this.name = channel.name;
  }

  append(value: string): void {
    this.pending += value;
    const nl = this.pending.lastIndexOf('\n');
    if (nl < 0) {
      return;
    }
    const complete = this.pending.slice(0, nl);
    this.pending = this.pending.slice(nl + 1);
    for (const line of complete.split('\n')) {
      this.emit(line);
    }
  }

  appendLine(value: string): void {
    this.append(`${value}\n`);
  }

  private emit(raw: string): void {
    if (isLogNoise(raw)) {
      return;
    }
    const line = logLine(raw);
    this.tail.push(line);
    if (this.tail.length > 2000) {
      this.tail.splice(0, this.tail.length - 2000);
    }
    this.channel.appendLine(line);
  }

  replace(value: string): void {
    this.pending = '';
    this.tail.length = 0;
    this.channel.replace(value);
  }

  clear(): void {
    this.pending = '';
    this.tail.length = 0;
    this.channel.clear();
  }

  show(columnOrPreserve?: vscode.ViewColumn | boolean, preserveFocus?: boolean): void {
    if (typeof columnOrPreserve === 'boolean' || columnOrPreserve === undefined) {
      this.channel.show(columnOrPreserve);
    } else {
      this.channel.show(columnOrPreserve, preserveFocus);
    }
  }

  hide(): void {
    this.channel.hide();
  }

  dispose(): void {
    this.channel.dispose();
  }
}
