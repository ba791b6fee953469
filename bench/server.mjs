// server.mjs - make bench-server's client: with 1, 2, 4 and 8 concurrent
// streams (BENCH_STREAMS), the generation tok/s (the sum of each stream's
// decode rate, as llama.cpp's server reports per slot), the wall tok/s
// including prefill, and time to first token; then the prefill a repeated
// long system prompt saves. Node's own fetch, no package.
// Usage: node bench/server.mjs BASE_URL MODEL_ID
const [base, model] = process.argv.slice(2);
const N_TOK = Number(process.env.BENCH_TOKENS || 64);
const STREAMS = (process.env.BENCH_STREAMS || '1 2 4 8').trim().split(/\s+/).map(Number);

async function stream(content, maxTokens, system = 'You are a helpful assistant.') {
  const t0 = performance.now();
  const r = await fetch(`${base}/chat/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, stream: true, temperature: 0.7, seed: 1, max_tokens: maxTokens,
      ignore_eos: true, stream_options: { include_usage: true },
      messages: [{ role: 'system', content: system }, { role: 'user', content }] }),
  });
  const dec = new TextDecoder();
  // a token is a delta with text: the server writes the text as it comes,
  // and nothing for a step that added none (see the check below)
  let ttft = 0, first = 0, last = 0, n = 0, usage = null, buf = '';
  for await (const chunk of r.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i); buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.choices?.[0]?.delta?.content) {
        last = performance.now();
        if (!n++) { first = last; ttft = first - t0; }
      }
      if (j.usage) usage = j.usage;
    }
  }
  // decode rate: the tokens after the first over the time they took
  const gen = n > 1 && last > first ? (n - 1) / ((last - first) / 1000) : 0;
  return { ms: performance.now() - t0, ttft, gen, n, usage };
}

console.log(`streams  generation tok/s  per-stream  tok/s incl. prefill  TTFT ms (mean)`);
let one = 0;
for (const n of STREAMS) {
  await stream('warm up', 4);
  const t0 = performance.now();
  const rs = await Promise.all(Array.from({ length: n }, (_, i) => stream(`Tell me a story about number ${i}.`, N_TOK)));
  const s = (performance.now() - t0) / 1000;
  const toks = rs.reduce((a, r) => a + (r.usage?.completion_tokens || 0), 0);
  const agg = toks / s;
  const gen = rs.reduce((a, r) => a + r.gen, 0);
  if (n === 1) one = gen;
  const ttft = rs.reduce((a, r) => a + r.ttft, 0) / n;
  console.log(`${String(n).padEnd(8)} ${gen.toFixed(1).padStart(16)} ${(gen / n).toFixed(1).padStart(11)} ` +
    `${agg.toFixed(1).padStart(20)} ${ttft.toFixed(0).padStart(15)}` +
    (n > 1 && one ? `   (${(gen / one).toFixed(2)}x one stream)` : ''));
  // a delta that held two tokens (a late reader) would bias the rate
  const deltas = rs.reduce((a, r) => a + r.n, 0);
  if (deltas !== toks) console.log(`  (${deltas} deltas with text for ${toks} tokens)`);
}
const sys = 'You are an agent with tools. '.repeat(60);
const first = await stream('What time is it?', 4, sys);
const again = await stream('What day is it?', 4, sys);
console.log(`prefix reuse: a ${first.usage.prompt_tokens}-token prompt, first TTFT ${first.ttft.toFixed(0)} ms; ` +
  `again with ${again.usage.prompt_tokens_details.cached_tokens} tokens cached: ${again.ttft.toFixed(0)} ms`);
