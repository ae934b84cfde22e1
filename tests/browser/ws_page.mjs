// A real browser as a WebSocket client: headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core, for tests/browser.rs.
//
// usage: node tests/browser/ws_page.mjs ws://127.0.0.1:PORT/ COUNT [SEND_TEXT]
//        WS_TRUST_SPKI=<base64 SHA-256 of the server key's SPKI> \
//          node tests/browser/ws_page.mjs wss://127.0.0.1:PORT/ COUNT [SEND_TEXT]
//
// With WS_TRUST_SPKI, Chromium trusts the test server's certificate for this
// run only (--ignore-certificate-errors-spki-list: certificate errors are
// ignored for that one public key, nothing is installed anywhere).
//
// The page opens `new WebSocket(url)` and appends every message it receives
// to the DOM (text as is, binary as `binary:HEX`). This script prints, one
// line each, flushed:
//   open                    once the page's onopen fired
//   extensions <json>       the negotiated extensions (ws.extensions)
//   message <json string>   each message, read back from the DOM, in order,
//                           until COUNT messages have arrived
//   sent                    after the first message, when SEND_TEXT is given
//                           and the page has sent it
//   closed <code>           after the page closed the socket (code 1000)
// and exits 0; on any failure or timeout it prints `error ...` and exits 1.
import { say, withPage } from './page.mjs';

const [url, countArg, sendText] = process.argv.slice(2);
const count = Number(countArg ?? '1');
const trustSpki = process.env.WS_TRUST_SPKI;
const trust = trustSpki ? [`--ignore-certificate-errors-spki-list=${trustSpki}`] : [];

await withPage(trust, async (page) => {
  await page.setContent('<!doctype html><title>wsbroadcaster</title><ol id="log"></ol>');
  await page.evaluate((url) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    window.__ws = ws;
    ws.onopen = () => {
      window.__open = true;
    };
    ws.onmessage = (e) => {
      const li = document.createElement('li');
      li.textContent =
        typeof e.data === 'string'
          ? e.data
          : 'binary:' +
            Array.from(new Uint8Array(e.data), (b) => b.toString(16).padStart(2, '0')).join('');
      document.getElementById('log').appendChild(li);
    };
    ws.onclose = (e) => {
      window.__closed = e.code;
    };
    ws.onerror = () => {
      window.__error = true;
    };
  }, url);
  await page.waitForFunction(() => window.__open === true || window.__error === true);
  if (await page.evaluate(() => window.__error === true)) {
    throw new Error(`the page could not connect to ${url}`);
  }
  say('open');
  say('extensions ' + JSON.stringify(await page.evaluate(() => window.__ws.extensions)));

  for (let n = 1; n <= count; n++) {
    await page.waitForFunction((n) => document.querySelectorAll('#log li').length >= n, n);
    const text = await page.evaluate(
      (n) => document.querySelectorAll('#log li')[n - 1].textContent,
      n,
    );
    say('message ' + JSON.stringify(text));
    if (n === 1 && sendText !== undefined) {
      await page.evaluate((t) => window.__ws.send(t), sendText);
      say('sent');
    }
  }

  await page.evaluate(() => window.__ws.close(1000, 'bye'));
  await page.waitForFunction(() => window.__closed !== undefined);
  say('closed ' + (await page.evaluate(() => window.__closed)));
});
