// Drives headless Chromium through code-server for scripts/screenshot.sh (see there).
const { chromium } = require('playwright-core');
const { PORT, EXT_DEV, WS, OUTPNG } = process.env;

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-dev-shm-usage', '--disable-gpu', '--disable-quic'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
  const auth = `127.0.0.1:${PORT}`;
  const payload = JSON.stringify([['extensionDevelopmentPath', `vscode-remote://${auth}${EXT_DEV}`]]);
  await page.goto(`http://${auth}/?folder=${encodeURIComponent(WS)}&payload=${encodeURIComponent(payload)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
  // the extension is up when its status bar item is
  await page.waitForSelector('.statusbar-item:has-text("CodeAct")', { timeout: 60000 });
  await page.keyboard.press('Control+Shift+P');
  await page.waitForSelector('.quick-input-widget input');
  await page.keyboard.type('>CodeAct: Open Last Run');
  await page.waitForSelector('.quick-input-list .monaco-list-row:has-text("Open Last Run")', { timeout: 15000 });
  await page.keyboard.press('Enter');
  await page.waitForSelector('.monaco-editor .view-lines', { timeout: 30000 });
  await page.waitForSelector('.codelens-decoration a', { timeout: 30000 });
  if (process.env.SHOT === 'runs') {
    const fail = (e) => page.screenshot({ path: `${OUTPNG}.failed.png` }).then(() => Promise.reject(e));
    // a second run, in review mode: it waits for "Run step" while the Runs view shows both
    await page.keyboard.press('Control+Shift+P');
    await page.waitForSelector('.quick-input-widget input');
    await page.keyboard.type('>CodeAct: Run Task…');
    await page.click('.quick-input-list .monaco-list-row:has-text("Run Task…")', { timeout: 15000 }).catch(fail);
    await page.waitForSelector('.quick-input-widget:has-text("Run Task (1/2)")', { timeout: 30000 }).catch(fail);
    await page.keyboard.type('Is SKU-42 in stock for 3 units, and what do they weigh?');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.quick-input-widget:has-text("Run Task (2/2)")', { timeout: 15000 });
    await page.keyboard.press('Enter');
    await page.waitForSelector('.codelens-decoration a:has-text("Run step")', { timeout: 60000 });
    await page.keyboard.press('Control+Shift+P');
    await page.waitForSelector('.quick-input-widget input');
    await page.keyboard.type('>CodeAct: Show Runs');
    await page.waitForSelector('.quick-input-list .monaco-list-row:has-text("Show Runs")', { timeout: 15000 });
    await page.keyboard.press('Enter');
    await page.waitForSelector('.monaco-list-row:has-text("waiting for you")', { timeout: 30000 });
    await page.waitForTimeout(1500); // let the last paint land
    await page.screenshot({ path: OUTPNG });
    await browser.close();
    return;
  }
  await page.keyboard.press('Control+Shift+M');
  await page.waitForSelector('.markers-panel .monaco-list-row', { timeout: 30000 }).catch(() => undefined);
  await page.waitForTimeout(1000); // let the last paint land
  await page.screenshot({ path: OUTPNG });
  await browser.close();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
