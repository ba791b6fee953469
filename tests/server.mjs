// server.mjs - picolm-server driven by the official `openai` npm client
// (and raw HTTP for what a client library would not send), as PicoClaw and
// other agents use it: models, chat non-streamed and streamed (the same
// text), finish reasons, concurrency (each answer equal to the same request
// alone), seeds, JSON schema output, stop strings, completions, every bad
// request answered with its status while the server keeps serving, a
// cancelled stream freeing its slot, and a bounded load test.
// Usage: node tests/server.mjs BASE_URL NPM_DIR   (prints "server: N passed, M failed")
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

const [base, npmDir] = process.argv.slice(2);
const require = createRequire(path.resolve(npmDir, 'package.json'));
const OpenAI = require('openai');
const client = new OpenAI({ baseURL: base, apiKey: 'none', maxRetries: 0, timeout: 120000 });
const url = new URL(base);

let pass = 0, fail = 0;
function check(ok, what) {
  if (ok) pass++;
  else { fail++; console.error(`FAIL server: ${what}`); }
}

async function chat(content, extra = {}) {
  return client.chat.completions.create({
    model: 'tiny32k-Q4_K_M',
    messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content }],
    temperature: 0, max_tokens: 24, ...extra,
  });
}

async function streamText(content, extra = {}) {
  const s = await client.chat.completions.create({
    model: 'tiny32k-Q4_K_M',
    messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content }],
    temperature: 0, max_tokens: 24, stream: true, stream_options: { include_usage: true }, ...extra,
  });
  let text = '', finish = null, usage = null, chunks = 0;
  for await (const ch of s) {
    chunks++;
    if (ch.usage) usage = ch.usage;
    for (const c of ch.choices) {
      if (c.delta?.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, finish, usage, chunks };
}

// A raw request; resolves to {status, body}.
function raw(bytes, { timeoutMs = 20000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(Number(url.port), url.hostname);
    let data = Buffer.alloc(0);
    const t = setTimeout(() => { sock.destroy(); resolve({ status: 0, body: 'timeout' }); }, timeoutMs);
    sock.on('data', (d) => { data = Buffer.concat([data, d]); });
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(t);
      const s = data.toString('latin1');
      const m = /^HTTP\/1\.1 (\d+)/.exec(s);
      resolve({ status: m ? Number(m[1]) : 0, body: s.slice(s.indexOf('\r\n\r\n') + 4) });
    });
    sock.write(bytes);
  });
}

function post(pathname, body, headers = '') {
  const b = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return raw(Buffer.concat([Buffer.from(`POST ${pathname} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${b.length}\r\nConnection: close\r\n${headers}\r\n`), b]));
}

async function main() {
  const models = await client.models.list();
  check(models.data.length === 1 && models.data[0].id === 'tiny32k-Q4_K_M', 'models list');

  const a = await chat('Hello! What is 2 + 2?');
  const textA = a.choices[0].message.content;
  check(typeof textA === 'string' && textA.length > 0, 'chat answer');
  check(a.choices[0].finish_reason === 'length' && a.usage.completion_tokens === 24, 'max_tokens gives length');
  check(a.usage.prompt_tokens > 10 && a.usage.total_tokens === a.usage.prompt_tokens + 24, 'usage');
  const s = await streamText('Hello! What is 2 + 2?');
  check(s.text === textA, `streamed text equals the non-streamed one (${JSON.stringify(s.text)} vs ${JSON.stringify(textA)})`);
  check(s.finish === 'length' && s.usage && s.usage.completion_tokens === 24 && s.chunks > 3, 'stream end and usage');
  check(s.usage.prompt_tokens_details.cached_tokens > 0, 'the repeated prompt reused its prefix');

  // 6 concurrent greedy requests, each equal to the same request alone
  const prompts = ['one', 'two two', 'three three three', 'four', 'five five', 'six'].map((p) => `Tell me about ${p}.`);
  const alone = [];
  for (const p of prompts) alone.push((await chat(p)).choices[0].message.content);
  const together = await Promise.all(prompts.map((p, i) => (i % 2 ? streamText(p).then((r) => r.text)
    : chat(p).then((r) => r.choices[0].message.content))));
  check(together.every((t, i) => t === alone[i]), '6 concurrent requests equal each alone');

  // seeds: the same seed gives the same sampled text; another usually another
  const s1 = await chat('Write a poem.', { temperature: 0.9, seed: 7 });
  const s2 = await chat('Write a poem.', { temperature: 0.9, seed: 7 });
  const s3 = await chat('Write a poem.', { temperature: 0.9, seed: 8 });
  check(s1.choices[0].message.content === s2.choices[0].message.content, 'same seed, same text');
  check(s1.choices[0].message.content !== s3.choices[0].message.content, 'another seed, another text');

  // JSON schema output parses and matches
  const schema = { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' },
    tags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] } } }, required: ['name', 'age', 'tags'] };
  const js = await chat('Describe a person as JSON.', { max_tokens: 120, temperature: 0.8, seed: 3,
    response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema } } });
  let obj = null;
  try { obj = JSON.parse(js.choices[0].message.content); } catch { /* checked below */ }
  check(obj && typeof obj.name === 'string' && Number.isInteger(obj.age) && Array.isArray(obj.tags) &&
    obj.tags.every((t) => t === 'a' || t === 'b'), `json_schema output matches: ${js.choices[0].message.content}`);
  const jo = await chat('JSON please', { max_tokens: 60, response_format: { type: 'json_object' } });
  let ok = true;
  try { JSON.parse(jo.choices[0].message.content); } catch { ok = false; }
  check(ok, 'json_object output parses');

  // stop strings: the text before the first occurrence, never the stop string
  const stop = textA.slice(5, 9);
  if (stop.length === 4) {
    const st = await chat('Hello! What is 2 + 2?', { stop: [stop, 'zzzz'] });
    const want = textA.slice(0, textA.indexOf(stop));
    check(st.choices[0].message.content === want && st.choices[0].finish_reason === 'stop',
      `stop ${JSON.stringify(stop)}: ${JSON.stringify(st.choices[0].message.content)}`);
  }

  // completions
  const c = await client.completions.create({ model: 'tiny32k-Q4_K_M', prompt: 'Once upon a time', max_tokens: 10,
    temperature: 0 });
  check(c.choices[0].text.length > 0 && c.choices[0].finish_reason === 'length' && c.usage.completion_tokens === 10,
    'completions');

  // bad requests, each with its status; the server keeps serving
  const bad = [
    [await post('/v1/chat/completions', '{"messages": [', ''), 400, 'malformed JSON'],
    [await post('/v1/chat/completions', { messages: 'hi' }), 400, 'messages of the wrong type'],
    [await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }), 400,
      'temperature of the wrong type'],
    [await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], temperature: 7 }), 400,
      'temperature out of range'],
    [await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: -5 }), 400,
      'negative max_tokens'],
    [await post('/v1/chat/completions', { messages: [{ role: 'wizard', content: 'x' }] }), 400, 'unknown role'],
    [await post('/v1/chat/completions', { model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] }), 404,
      'unknown model'],
    [await post('/v1/nothing', {}), 404, 'unknown route'],
    [await post('/v1/chat/completions', 'x'.repeat(5 << 20)), 413, 'body too large'],
    [await raw('GARBAGE\r\n\r\n'), 400, 'not HTTP'],
    [await raw('GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'), 400,
      'chunked with Content-Length'],
  ];
  for (const [r, want, what] of bad) {
    let err = null;
    try { err = JSON.parse(r.body).error; } catch { /* checked below */ }
    check(r.status === want && err && typeof err.message === 'string', `${what}: ${r.status} ${r.body.slice(0, 120)}`);
  }
  const after = await chat('Hello! What is 2 + 2?');
  check(after.choices[0].message.content === textA, 'still serving, the same answer, after the bad requests');

  // a cancelled stream frees its slot at once
  const ctl = new AbortController();
  const long = await client.chat.completions.create({ model: 'tiny32k-Q4_K_M', stream: true, max_tokens: 400,
    messages: [{ role: 'user', content: 'Talk for a long time.' }] }, { signal: ctl.signal });
  let got = 0;
  try { for await (const ch of long) { if (++got === 3) ctl.abort(); } } catch { /* aborted */ }
  await new Promise((r) => setTimeout(r, 500));
  const m = await raw(`GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  check(/picolm_busy_slots 0\b/.test(m.body), `a cancelled stream frees its slot: ${m.body.match(/busy_slots \d+/)}`);

  // load: 500 requests, 16 at once: no errors; memory flat (VmRSS before and after)
  const pid = Number(process.env.SERVER_PID || 0);
  const rss = async () => {
    if (!pid) return 0;
    const fs = await import('node:fs');
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(st)[1]);
  };
  const warm = [];
  for (let i = 0; i < 16; i++) warm.push(chat(`warm ${i}`, { max_tokens: 4 }));
  await Promise.all(warm);
  const r0 = await rss();
  let errors = 0, done = 0, next = 0;
  const N = Number(process.env.LOAD_N || 500);
  async function worker() {
    while (next < N) {
      const i = next++;
      try {
        const r = await chat(`load ${i % 37}`, { max_tokens: 4, temperature: 0.5, seed: i });
        if (!r.choices[0].message.content && r.choices[0].finish_reason !== 'stop') errors++;
      } catch (e) { errors++; if (errors < 4) console.error(e.message); }
      done++;
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker));
  const r1 = await rss();
  check(errors === 0 && done === N, `load: ${done} requests, ${errors} errors`);
  check(!pid || r1 - r0 < 16 * 1024, `load: memory flat (VmRSS ${r0} -> ${r1} kB)`);
  console.log(`  load: ${N} requests 16 at once, ${errors} errors, VmRSS ${r0} -> ${r1} kB`);
}

main().catch((e) => { fail++; console.error('FAIL server: ' + (e.stack || e)); })
  .finally(() => { console.log(`server: ${pass} passed, ${fail} failed`); process.exit(fail ? 1 : 0); });
