// Not a test: makes the run docs/screenshot-trajectory.png shows (a finished run whose second step
// failed and was fixed) in the real window; scripts/e2e.sh then reopens it in a fresh window
// ("CodeAct: Open Last Run" via screenshot.sh) to take the picture — the extension host of a test
// run is gone by the time the test runner's own shot is taken.
import * as vscode from 'vscode';
import { api, eventually, lensTitles, workspaceRoot, writeFile } from '../e2e/helpers';

const REPLIES = [
  "I'll look up the item's price and weight first, then the stock.\n\n```python\nitem = price_of(\"SKU-42\")\nprint(item)\nprint(stock_level(\"SKU-42\"))\n```",
  'Now the goods in euros.\n\n```python\nunits = 3\ngoods_eur = convert_currency(item["usd"] * units, "USD", "EURO")\n```',
  'The currency code is EUR. Total with shipping:\n\n```python\ngoods_eur = convert_currency(item["usd"] * units, "USD", "EUR")\nshipping = shipping_quote(item["kg"] * units, "DE")\ntotal = round(goods_eur + shipping, 2)\nprint(goods_eur, shipping, total)\nfinal_answer(total)\n```',
];

export async function run(): Promise<void> {
  const codeact = await api();
  const root = workspaceRoot();
  await writeFile(vscode.Uri.joinPath(root, 'replies', 'screenshot.json'), JSON.stringify(REPLIES));
  const target = vscode.Uri.joinPath(root, 'quote.py');
  await writeFile(target, '"""Shipping quotes."""\n\n# The agent\'s program goes here.\n');
  await vscode.window.showTextDocument(target);
  const started = (await vscode.commands.executeCommand('codeact-lsp.runTask', {
    task: 'What does it cost in EUR to buy 3 units of SKU-42 and ship them to Germany (DE)?',
    model: 'scripted:replies/screenshot.json',
  })) as { runId: string; trajectoryUri: string };
  await codeact.waitForRun(started.runId);
  const trajUri = vscode.Uri.parse(started.trajectoryUri);
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  await vscode.window.showTextDocument(trajUri, { preview: false });
  await eventually('the Accept lens', () => lensTitles(trajUri), (ls) => ls.some((l) => l.command === 'codeact.accept'));
  await eventually('the error diagnostic', () => vscode.languages.getDiagnostics(trajUri), (ds) => ds.length > 0);
}
