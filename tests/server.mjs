// server.mjs - picolm-server driven by the official `openai` npm client
// (and raw HTTP for what a client library would not send), as PicoClaw and
// other agents use it: models, chat non-streamed and streamed (the same
// text), finish reasons, concurrency (each answer equal to the same request
// alone), seeds, JSON schema output, stop strings, completions, every bad
// request answered with its status while the server keeps serving, tool
// calls (forced, streamed, auto in PicoClaw's shape, a conversation with a
// call and its result, bad tools), a cancelled stream freeing its slot,
// --lookup and --draft answers equal to a plain server's, --draft's
// start-up refusals, and a bounded load test.
// Usage: node tests/server.mjs BASE_URL NPM_DIR [PLAIN_URL DRAFT_URL DRAFT_PLAIN_URL]
// (prints "server: N passed, M failed"; SERVER_BIN and SERVER_MODELS for the start-up checks)
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

const [base, npmDir, plainBase, draftBase, draftPlainBase] = process.argv.slice(2);
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

  // the sampler's adjustments: a +100 bias on one token makes greedy
  // repeat it, a frequency penalty then lets it go; logprobs (chat and
  // completions, streamed and not) are sane and do not change the text
  const tokId = 1000;
  const biased = await chat('Hello! What is 2 + 2?', { logit_bias: { [tokId]: 100 }, max_tokens: 8, logprobs: true,
    top_logprobs: 3 });
  const lp = biased.choices[0].logprobs?.content;
  check(Array.isArray(lp) && lp.length === 8 && lp.every((e) => e.token === lp[0].token && e.logprob <= 0 &&
    e.top_logprobs.length === 3 && e.top_logprobs[0].token === e.token && Array.isArray(e.bytes)),
  `logit_bias +100 repeats one token, logprobs name it: ${JSON.stringify(lp?.slice(0, 2))}`);
  // (2 per occurrence: 50 of them outweigh the +100)
  const freed = await chat('Hello! What is 2 + 2?', { logit_bias: { [tokId]: 100 }, max_tokens: 60, frequency_penalty: 2,
    logprobs: true });
  const fl = freed.choices[0].logprobs?.content || [];
  check(fl.length === 60 && new Set(fl.map((e) => e.token)).size > 1 && fl.every((e) => e.top_logprobs.length === 0),
    `frequency_penalty lets the biased token go: ${fl.map((e) => e.token).join('|')}`);
  const lpA = await chat('Hello! What is 2 + 2?', { logprobs: true, top_logprobs: 2 });
  check(lpA.choices[0].message.content === textA && lpA.choices[0].logprobs.content.length === 24 &&
    lpA.choices[0].logprobs.content.map((e) => e.token).join('') === textA, 'logprobs leave the text as it was');
  const lps = await client.chat.completions.create({ model: 'tiny32k-Q4_K_M', temperature: 0, max_tokens: 24,
    messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: 'Hello! What is 2 + 2?' }],
    stream: true, logprobs: true, top_logprobs: 2 });
  const slp = [];
  for await (const ch of lps) for (const c of ch.choices) slp.push(...(c.logprobs?.content || []));
  check(slp.length === 24 && slp.every((e, i) => e.token === lpA.choices[0].logprobs.content[i].token &&
    e.logprob === lpA.choices[0].logprobs.content[i].logprob), 'streamed logprobs equal the non-streamed ones');
  const clp = await client.completions.create({ model: 'tiny32k-Q4_K_M', prompt: 'Once upon a time', max_tokens: 10,
    temperature: 0, logprobs: 2 });
  const cl = clp.choices[0].logprobs;
  check(cl && cl.tokens.length === 10 && cl.token_logprobs.length === 10 && cl.top_logprobs.length === 10 &&
    Object.keys(cl.top_logprobs[0]).length >= 1 && cl.text_offset[0] === 0 && cl.tokens.join('') === clp.choices[0].text,
  `completions logprobs: ${JSON.stringify(cl).slice(0, 200)}`);
  const pen = await chat('Hello! What is 2 + 2?', { presence_penalty: 2, repeat_penalty: 1.3, min_p: 0.05, top_k: 40 });
  check(typeof pen.choices[0].message.content === 'string', 'presence_penalty, repeat_penalty, min_p, top_k accepted');

  // a conversation longer than the context (512 here, --ctx-overflow
  // drop): its oldest turns go, the response says how many; one message
  // that alone is too long is still a 400
  const turns = [{ role: 'system', content: 'You are a helpful assistant.' }];
  for (let i = 0; i < 12; i++) {
    turns.push({ role: 'user', content: `Question ${i}: ` + 'tell me more about the old castle on the hill. '.repeat(4) });
    turns.push({ role: 'assistant', content: 'The castle is very old and has many towers and rooms. '.repeat(3) });
  }
  turns.push({ role: 'user', content: 'And the garden?' });
  const longConv = await post('/v1/chat/completions', { messages: turns, max_tokens: 16, temperature: 0 });
  let lj = null;
  try { lj = JSON.parse(longConv.body); } catch { /* checked below */ }
  check(longConv.status === 200 && lj && lj.dropped_messages > 0 && lj.dropped_messages % 2 === 0 &&
    lj.usage.prompt_tokens + 16 <= 512,
  `a long conversation drops its oldest turns: ${longConv.status} ${longConv.body.slice(0, 160)}`);
  const huge = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'castle '.repeat(800) }] });
  check(huge.status === 400 && /context_length_exceeded/.test(huge.body), `one message past the context: ${huge.status}`);

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
    [await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], presence_penalty: 3 }), 400,
      'presence_penalty out of range'],
    [await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], logit_bias: { abc: 1 } }), 400,
      'logit_bias key not a token id'],
    [await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], logit_bias: { 5: 101 } }), 400,
      'logit_bias value out of range'],
    [await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], top_logprobs: 3 }), 400,
      'top_logprobs without logprobs'],
    [await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 21 }),
      400, 'top_logprobs 21'],
    [await post('/v1/completions', { prompt: 'x', logprobs: 6 }), 400, 'completions logprobs 6'],
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

  // tool calls: forced (required, named) calls parse and match the schema, streamed and not
  const weatherTool = { type: 'function', function: { name: 'get_weather', description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] },
      days: { type: 'integer' } }, required: ['city', 'unit'] } } };
  const timeTool = { type: 'function', function: { name: 'get_time', parameters: { type: 'object',
    properties: { zone: { type: 'string' }, exact: { type: 'boolean' } }, required: ['zone', 'exact'] } } };
  const tools = [weatherTool, timeTool];
  const argsOk = (name, args) => {
    let a = null;
    try { a = JSON.parse(args); } catch { return false; }
    if (!a || typeof a !== 'object' || Array.isArray(a)) return false;
    if (name === 'get_weather') return typeof a.city === 'string' && (a.unit === 'c' || a.unit === 'f') &&
      (a.days === undefined || Number.isInteger(a.days));
    if (name === 'get_time') return typeof a.zone === 'string' && typeof a.exact === 'boolean';
    return false;
  };
  const toolMsgs = [{ role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'What is the weather in Paris?' }];
  const ids = new Set();
  for (const seed of [1, 2, 3, 4]) {
    for (const tool_choice of ['required', { type: 'function', function: { name: 'get_time' } }]) {
      const r = await client.chat.completions.create({ model: 'tiny32k-Q4_K_M', messages: toolMsgs, tools,
        tool_choice, temperature: 0.8, seed, max_tokens: 160 });
      const m = r.choices[0].message, tc = m.tool_calls?.[0];
      const want = typeof tool_choice === 'object' ? 'get_time' : null;
      check(r.choices[0].finish_reason === 'tool_calls' && m.tool_calls.length === 1 && tc.type === 'function' &&
        /^call_/.test(tc.id) && (!want || tc.function.name === want) && argsOk(tc.function.name, tc.function.arguments) &&
        m.content === null, `forced tool call (seed ${seed}, ${JSON.stringify(tool_choice)}): ${JSON.stringify(m)}`);
      if (tc) ids.add(tc.id);
      // streamed: the same call in delta.tool_calls pieces
      const st = await client.chat.completions.create({ model: 'tiny32k-Q4_K_M', messages: toolMsgs, tools,
        tool_choice, temperature: 0.8, seed, max_tokens: 160, stream: true });
      let name = '', args = '', id = null, finish = null, content = '', firstHasName = null;
      for await (const ch of st) {
        for (const c of ch.choices) {
          if (c.delta?.content) content += c.delta.content;
          for (const d of c.delta?.tool_calls || []) {
            if (firstHasName === null) firstHasName = !!(d.id && d.type === 'function' && d.function?.name);
            if (d.index !== 0) firstHasName = false;
            if (d.id) id = d.id;
            if (d.function?.name) name += d.function.name;
            if (d.function?.arguments) args += d.function.arguments;
          }
          if (c.finish_reason) finish = c.finish_reason;
        }
      }
      check(finish === 'tool_calls' && firstHasName && /^call_/.test(id) && content === '' &&
        (!want || name === want) && argsOk(name, args),
        `streamed forced call (seed ${seed}): ${name} ${args} ${finish}`);
      // the same seed: the same call, streamed or not (deltas never cut a UTF-8 character)
      check(tc && name === tc.function.name && args === tc.function.arguments,
        `streamed forced call equals the non-streamed one (seed ${seed}): ${JSON.stringify(args)} vs ${JSON.stringify(tc?.function.arguments)}`);
    }
  }
  check(ids.size >= 2, `call ids are unique (${ids.size})`);

  // PicoClaw's shape: a system prompt listing the tools, tools, tool_choice auto, streamed: text or a valid call
  const pico = await client.chat.completions.create({ model: 'tiny32k-Q4_K_M', stream: true, tools,
    tool_choice: 'auto', temperature: 0.7, max_tokens: 48, messages: [
      { role: 'system', content: 'You are picoclaw, a personal assistant. Tools: get_weather, get_time.' },
      { role: 'user', content: 'What time is it in Tokyo?' }] });
  let pText = '', pArgs = '', pName = '', pFinish = null;
  for await (const ch of pico) {
    for (const c of ch.choices) {
      if (c.delta?.content) pText += c.delta.content;
      for (const d of c.delta?.tool_calls || []) { pName += d.function?.name || ''; pArgs += d.function?.arguments || ''; }
      if (c.finish_reason) pFinish = c.finish_reason;
    }
  }
  check((pFinish === 'tool_calls' && argsOk(pName, pArgs)) || ((pFinish === 'length' || pFinish === 'stop') && !pName),
    `auto: text or a valid call (${pFinish}, ${JSON.stringify(pText.slice(0, 60))}, ${pName} ${pArgs})`);

  // a conversation with an earlier call and its result
  const conv = [...toolMsgs,
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
      function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 21, "sky": "clear"}' }];
  const cv = await client.chat.completions.create({ model: 'tiny32k-Q4_K_M', messages: conv, tools,
    temperature: 0, max_tokens: 16 });
  check(cv.choices[0].finish_reason !== undefined && cv.usage.prompt_tokens > 40 &&
    (cv.choices[0].message.content !== null || cv.choices[0].message.tool_calls),
    `a conversation with a tool call and its result: ${JSON.stringify(cv.choices[0])}`);
  const cvNone = await client.chat.completions.create({ model: 'tiny32k-Q4_K_M', messages: conv, tools,
    tool_choice: 'none', temperature: 0, max_tokens: 8 });
  check(typeof cvNone.choices[0].message.content === 'string' && !cvNone.choices[0].message.tool_calls &&
    cvNone.usage.prompt_tokens < cv.usage.prompt_tokens, 'tool_choice none: plain text, no tool list in the prompt');

  // bad tools and tool choices: 400 naming what is wrong
  const u = [{ role: 'user', content: 'x' }];
  const badTools = [
    [{ messages: u, tools: [{ type: 'retrieval' }] }, /tools\[0\]/, 'a tool that is not a function'],
    [{ messages: u, tools: [{ type: 'function', function: { name: 'bad name!' } }] }, /function\.name/, 'a bad tool name'],
    [{ messages: u, tools: [{ type: 'function', function: { name: 'x'.repeat(65) } }] }, /function\.name/, 'a long tool name'],
    [{ messages: u, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'array' } } }] },
      /tools\[0\] \(f\)/, 'parameters that are not an object schema'],
    [{ messages: u, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object',
      properties: { a: { $ref: '#/x' } } } } }] }, /tools\[0\] \(f\)/, 'parameters the compiler refuses'],
    [{ messages: u, tools, tool_choice: 'sometimes' }, /tool_choice/, 'an unknown tool_choice'],
    [{ messages: u, tools, tool_choice: { type: 'function', function: { name: 'nope' } } }, /nope/, 'a named tool that is not there'],
    [{ messages: u, tool_choice: 'required' }, /tool_choice/, 'required without tools'],
    [{ messages: u, tools, parallel_tool_calls: 'yes' }, /parallel_tool_calls/, 'parallel_tool_calls not a boolean'],
    [{ messages: [{ role: 'assistant', tool_calls: [{ type: 'function', function: { name: 'f', arguments: 'not json' } }] }] },
      /tool call/, 'earlier call arguments that are not JSON'],
  ];
  for (const [body, re, what] of badTools) {
    const r = await post('/v1/chat/completions', body);
    let err = null;
    try { err = JSON.parse(r.body).error; } catch { /* checked below */ }
    check(r.status === 400 && err && re.test(err.message), `${what}: ${r.status} ${r.body.slice(0, 160)}`);
  }
  const par = await client.chat.completions.create({ model: 'tiny32k-Q4_K_M', messages: toolMsgs, tools,
    tool_choice: 'required', parallel_tool_calls: true, temperature: 0, max_tokens: 160 });
  check(par.choices[0].message.tool_calls?.length === 1, 'parallel_tool_calls accepted, one call');

  // a cancelled stream frees its slot at once
  const ctl = new AbortController();
  const long = await client.chat.completions.create({ model: 'tiny32k-Q4_K_M', stream: true, max_tokens: 400,
    messages: [{ role: 'user', content: 'Talk for a long time.' }] }, { signal: ctl.signal });
  let got = 0;
  try { for await (const ch of long) { if (++got === 3) ctl.abort(); } } catch { /* aborted */ }
  for (let i = 0; i < 50; i++) { /* the engine lets go within a step: wait up to 5 s on a loaded machine */
    await new Promise((r) => setTimeout(r, 100));
    if (/picolm_busy_slots 0\b/.test((await raw(`GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).body)) break;
  }
  const m = await raw(`GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  check(/picolm_busy_slots 0\b/.test(m.body), `a cancelled stream frees its slot: ${m.body.match(/busy_slots \d+/)}`);
  // --lookup 3 (this server's): the biased runs above repeat a token, so drafts were taken, and every
  // answer above equal to its plain run shows that drafting changes nothing
  const acc = Number((/picolm_draft_accepted_total (\d+)/.exec(m.body) || [])[1] || 0);
  check(acc > 20, `prompt-lookup drafts accepted: ${acc}`);
  if (plainBase) { // the same requests on a server without --lookup: the same text
    const plain = new OpenAI({ baseURL: plainBase, apiKey: 'none', maxRetries: 0, timeout: 120000 });
    const reqs = [{ temperature: 0 }, { temperature: 0.9, seed: 11 }, { temperature: 0, logit_bias: { [tokId]: 100 },
      frequency_penalty: 2, max_tokens: 60 }, { temperature: 0, repeat_penalty: 0.5, max_tokens: 40 }];
    for (const extra of reqs) {
      const body = { model: 'tiny32k-Q4_K_M', max_tokens: 32, messages: [{ role: 'user',
        content: 'Repeat after me: the cat sat on the mat, the cat sat on the mat.' }], ...extra };
      const [x, y] = await Promise.all([client.chat.completions.create(body), plain.chat.completions.create(body)]);
      check(x.choices[0].message.content === y.choices[0].message.content,
        `--lookup changes nothing (${JSON.stringify(extra)}): ${JSON.stringify(x.choices[0].message.content)} vs ${JSON.stringify(y.choices[0].message.content)}`);
    }
  }

  if (draftBase) await draftChecks();

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
  // under AddressSanitizer freed memory sits in its quarantine: only a real leak would grow past that
  const slack = (process.env.SERVER_SAN ? 256 : 16) * 1024;
  check(!pid || r1 - r0 < slack, `load: memory flat (VmRSS ${r0} -> ${r1} kB)`);
  console.log(`  load: ${N} requests 16 at once, ${errors} errors, VmRSS ${r0} -> ${r1} kB`);
}

// --draft (tiny512-Q8_0 drafting for tiny512-Q4_K_M, 2 slots): greedy and
// seeded answers, two at a time, equal the plain twin's one at a time; the
// drafts show in /metrics. A draft of another vocabulary, or with --lookup,
// refuses to start.
async function draftChecks() {
  const opts = { apiKey: 'none', maxRetries: 0, timeout: 120000 };
  const dc = new OpenAI({ baseURL: draftBase, ...opts }), pc = new OpenAI({ baseURL: draftPlainBase, ...opts });
  const reqs = [{ temperature: 0 }, { temperature: 0.9, seed: 5 }, { temperature: 0, prompt: 'Once upon a time' },
    { temperature: 0.8, seed: 9, prompt: 'Once upon a time' }, { temperature: 0, max_tokens: 64 },
    { temperature: 0.7, seed: 2, top_k: 40 }];
  const run = (c, r) => (r.prompt
    ? c.completions.create({ model: 'tiny512-Q4_K_M', max_tokens: 48, ...r }).then((x) => x.choices[0].text)
    : c.chat.completions.create({ model: 'tiny512-Q4_K_M', max_tokens: 48, ...r,
      messages: [{ role: 'user', content: 'Tell me a story about a cat.' }] }).then((x) => x.choices[0].message.content));
  try {
    const want = [];
    for (const r of reqs) want.push(await run(pc, r));
    const got = [];
    for (let i = 0; i < reqs.length; i += 2) got.push(...await Promise.all(reqs.slice(i, i + 2).map((r) => run(dc, r))));
    reqs.forEach((r, i) => check(got[i] === want[i],
      `--draft changes nothing (${JSON.stringify(r)}): ${JSON.stringify(got[i])} vs ${JSON.stringify(want[i])}`));
    const m = (await fetch(new URL('/metrics', draftBase).href).then((x) => x.text()));
    const dr = Number((/picolm_draft_tokens_total (\d+)/.exec(m) || [])[1] || 0);
    const ac = Number((/picolm_draft_accepted_total (\d+)/.exec(m) || [])[1] || 0);
    check(dr > 0 && ac > 0, `--draft drafts in /metrics: ${dr} drafted, ${ac} accepted`);
    console.log(`  draft: ${reqs.length} requests against the plain twin, ${dr} drafted, ${ac} accepted`);
  } catch (e) { check(false, `--draft server: ${e.message}`); }
  const bin = process.env.SERVER_BIN, models = process.env.SERVER_MODELS;
  if (!bin || !models) return;
  const start = (args) => spawnSync(bin, [`${models}/tiny512-Q4_K_M.gguf`, '--port', '0', ...args],
    { encoding: 'utf8', timeout: 30000 });
  const other = start(['--draft', `${models}/tiny32k-Q4_K_M.gguf`]);
  const vocabMsg = /^picolm-server: --draft: .*tiny32k-Q4_K_M\.gguf has another vocabulary than .*\n$/;
  check(other.status === 1 && vocabMsg.test(other.stderr),
    `--draft of another vocabulary: exit ${other.status}, ${JSON.stringify(other.stderr)}`);
  const both = start(['--draft', `${models}/tiny512-Q8_0.gguf`, '--lookup', '2']);
  check(both.status === 2 && /--lookup/.test(both.stderr),
    `--draft with --lookup: exit ${both.status}, ${JSON.stringify(both.stderr)}`);
  const alone = start(['--draft-max', '4']);
  check(alone.status === 2 && /--draft-max needs --draft/.test(alone.stderr),
    `--draft-max without --draft: exit ${alone.status}, ${JSON.stringify(alone.stderr)}`);
}

main().catch((e) => { fail++; console.error('FAIL server: ' + (e.stack || e)); })
  .finally(() => { console.log(`server: ${pass} passed, ${fail} failed`); process.exit(fail ? 1 : 0); });
