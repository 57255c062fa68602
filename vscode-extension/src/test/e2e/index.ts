// Entry point that ../shared/e2e-vscode/run-extension-tests.sh loads inside the real extension host:
// a mocha run over the compiled *.test.js files beside this one. The reporter prints plain lines
// (the browser console that carries them does not apply printf-style formats) and closes with
// "N passed, N failed".
import * as fs from 'fs';
import * as path from 'path';
import Mocha from 'mocha';

class PlainReporter {
  constructor(runner: Mocha.Runner) {
    let passed = 0;
    let failed = 0;
    const started = Date.now();
    runner.on('suite', (suite: Mocha.Suite) => {
      if (suite.title) {
        console.log(`e2e: ${suite.title}`);
      }
    });
    runner.on('pass', (test: Mocha.Test) => {
      passed++;
      console.log(`e2e:   ✔ ${test.title} (${test.duration ?? 0} ms)`);
    });
    runner.on('fail', (test: Mocha.Test, err: Error) => {
      failed++;
      console.log(`e2e:   ✘ ${test.fullTitle()}\n${err.stack ?? err.message}`);
    });
    runner.once('end', () => {
      console.log(`e2e: ${passed} passed, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
  }
}

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 150000, color: false, reporter: PlainReporter as unknown as Mocha.ReporterConstructor });
  const grep = process.env.CODEACT_E2E_GREP;
  if (grep) {
    mocha.grep(grep);
  }
  for (const file of fs.readdirSync(__dirname).sort()) {
    if (file.endsWith('.test.js')) {
      mocha.addFile(path.join(__dirname, file));
    }
  }
  return new Promise((resolve, reject) => {
    mocha.run((failures) => (failures > 0 ? reject(new Error(`${failures} end-to-end test(s) failed`)) : resolve()));
  });
}
