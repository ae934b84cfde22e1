// Subscribe with recovery: remember where we are on each stream, come back with since=.
function subscribe(base, channels, onMessage, onLoss) {
  const pos = {}; // stream ("*" or a channel) -> { ep, off }
  let ws;
  let retry = 0;
  function connect() {
    const q = ['recover=1', ...channels.map((c) => 'channel=' + c)];
    for (const [ch, p] of Object.entries(pos)) q.push(`since=${ch}:${p.off}:${p.ep}`);
    ws = new WebSocket(base + '?' + q.join('&'));
    ws.onopen = () => (retry = 0);
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (!m.ch) return onMessage(m); // {"direct":true,...} or {"id":...}
      if (m.reset || m.gap) onLoss(m); // reset: reload your state; gap: a policy dropped some
      if ('data' in m || 'b64' in m) onMessage(m);
      pos[m.ch] = { ep: m.ep, off: m.off };
    };
    ws.onclose = () => setTimeout(connect, Math.min(1000 * 2 ** retry++, 30000));
  }
  connect();
  return { socket: () => ws, close: () => ((ws.onclose = null), ws.close()) };
}
