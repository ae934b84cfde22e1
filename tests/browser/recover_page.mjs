// The recovering client of docs/recovery.md (tests/browser/recovery_client.js)
// in headless Chromium, for tests/browser.rs.
//
// usage: node tests/browser/recover_page.mjs ws://127.0.0.1:PORT/ CHANNEL
//
// Prints, one line each:
//   open                 the first connection is up
//   got <json array>     the data received so far, after 3 and after 103 and 104
//   dropped              after the page closed its socket (it reconnects in 1 s)
//   urls <json array>    every URL the page connected to
//   losses <json array>  every reset or gap envelope it was told about
// and exits 0; on failure or timeout `error ...` and exit 1.
import { readFileSync } from 'node:fs';
import { say, withPage } from './page.mjs';

const [url, channel] = process.argv.slice(2);
const client = readFileSync(new URL('./recovery_client.js', import.meta.url), 'utf8');

await withPage([], async (page) => {
  await page.setContent('<!doctype html><title>recovery</title>');
  // Record every URL the client connects to (the since= it sends).
  await page.evaluate(() => {
    const Native = window.WebSocket;
    window.__urls = [];
    window.WebSocket = function (u) {
      window.__urls.push(u);
      return new Native(u);
    };
  });
  await page.addScriptTag({ content: client });
  await page.evaluate(([url, channel]) => {
    window.__got = [];
    window.__losses = [];
    window.__sub = subscribe(url, [channel], (m) => window.__got.push(m.data), (m) => window.__losses.push(m));
  }, [url, channel]);
  await page.waitForFunction(() => window.__sub.socket().readyState === 1);
  say('open');
  const gotAtLeast = async (n) => {
    await page.waitForFunction((n) => window.__got.length >= n, n);
    say('got ' + JSON.stringify(await page.evaluate(() => window.__got)));
  };
  await gotAtLeast(3);
  await page.evaluate(() => window.__sub.socket().close());
  await page.waitForFunction(() => window.__sub.socket().readyState === 3);
  say('dropped');
  await gotAtLeast(103);
  await gotAtLeast(104);
  say('urls ' + JSON.stringify(await page.evaluate(() => window.__urls)));
  say('losses ' + JSON.stringify(await page.evaluate(() => window.__losses)));
  await page.evaluate(() => window.__sub.close());
});
