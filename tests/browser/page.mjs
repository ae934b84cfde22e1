// What the browser scripts for tests/browser.rs share: headless Chromium
// (Debian's /usr/bin/chromium) driven by playwright-core, the line protocol
// they print (`say`), the 90 s bound on the whole run, and the ending: exit 0
// when the body finishes, `error <first line of the message>` and exit 1 when
// it throws, with the browser closed either way.
import { chromium } from 'playwright-core';

export const STEP_TIMEOUT = 30_000;

// One line on stdout, flushed.
export const say = (line) => process.stdout.write(line + '\n');

// Runs `body(page)` in a fresh page of a fresh headless Chromium started with
// the extra command-line `args`, every playwright step bounded by STEP_TIMEOUT.
export async function withPage(args, body) {
  // Never outlive the test, whatever happens.
  setTimeout(() => {
    say('error overall timeout (90 s)');
    process.exit(1);
  }, 90_000).unref();

  let browser;
  try {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      timeout: STEP_TIMEOUT,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-proxy-server',
        ...args,
      ],
    });
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT);
    await body(page);
    await browser.close();
    process.exit(0);
  } catch (e) {
    say('error ' + String(e && e.message ? e.message : e).split('\n')[0]);
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }
}
