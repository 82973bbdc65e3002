#!/usr/bin/env node
// consume_batches driver for KafkaJS: a group consumer (KafkaJS always joins one) subscribed to
// golden fromBeginning, until it has the record before the high watermark.
// Usage: node kafkajs.js BOOTSTRAP HIGH_WATERMARK BUDGET_SECONDS. Prints one JSON document
// {"client", "client_version", "records": [...]} on stdout; on a consumer crash (e.g. a codec
// KafkaJS lacks: it ships only gzip) or on running out of time, exits 1 with the reason on
// stderr. KafkaJS's own log goes to stderr. Run by tests/golden/consume_batches.
'use strict';

const path = require('path');
const { createRequire } = require('module');

const clientsPackage = path.join(__dirname, '..', '..', 'clients', 'node', 'package.json');
const requireClient = createRequire(clientsPackage);
const { Kafka, logLevel } = requireClient('kafkajs');
const kafkajsVersion = requireClient('kafkajs/package.json').version;

const TOPIC = 'golden';
const DISCONNECT_BUDGET_MS = 5000;

// process.exit() drops whatever a pipe has not taken yet: exit only once the write is done.
function writeThenExit(stream, text, code) {
  stream.write(text, () => process.exit(code));
}

function fail(message) {
  writeThenExit(process.stderr, `kafkajs: ${message}\n`, 1);
}

function text(buffer, what) {
  if (buffer === null || buffer === undefined) return null;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    return decoder.decode(buffer);
  } catch (error) {
    throw new Error(`${what} is not UTF-8; consume_batches reports UTF-8 text only`);
  }
}

// KafkaJS decodes headers into an object: a repeated key becomes an array of its values, and
// keys come back in JavaScript's property order (integer-like keys first).
function headerPairs(headers, offset) {
  const pairs = [];
  for (const [key, value] of Object.entries(headers || {})) {
    const values = Array.isArray(value) ? value : [value];
    for (const one of values) pairs.push([key, text(one, `offset ${offset}: header ${key}`)]);
  }
  return pairs;
}

function recordJson(message) {
  const { offset } = message;
  return {
    offset: Number(offset),
    key: text(message.key, `offset ${offset}: key`),
    value: text(message.value, `offset ${offset}: value`),
    headers: headerPairs(message.headers, offset),
    timestamp: Number(message.timestamp),
  };
}

// KafkaJS logs to stdout by default; stdout is for the JSON only.
const stderrLogCreator = () => ({ namespace, level, label, log }) => {
  const { message, ...extra } = log;
  process.stderr.write(`kafkajs ${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`);
};

async function consume(bootstrap, highWatermark, budgetMs) {
  const kafka = new Kafka({
    clientId: 'golden-consume-kafkajs',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator: stderrLogCreator,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: 0 },
  });
  const consumer = kafka.consumer({
    groupId: 'golden-consume-kafkajs',
    sessionTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 100,
    retry: { retries: 0, restartOnFailure: async () => false },
  });
  const records = [];
  let timer;
  const finished = new Promise((resolve, reject) => {
    timer = setTimeout(() => {
      const last = records.length ? records[records.length - 1].offset : null;
      reject(new Error(`timed out with ${records.length} records (last offset ${last}); ` +
        `the high watermark is ${highWatermark}`));
    }, budgetMs);
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      reject(new Error(`consumer crashed after ${records.length} records: ${payload.error}`));
    });
    consumer
      .connect()
      .then(() => consumer.subscribe({ topics: [TOPIC], fromBeginning: true }))
      .then(() =>
        consumer.run({
          autoCommit: false,
          eachMessage: async ({ message }) => {
            try {
              records.push(recordJson(message));
            } catch (error) {
              reject(error);
              return;
            }
            if (BigInt(message.offset) >= BigInt(highWatermark) - 1n) resolve(records);
          },
        }))
      .catch(reject);
  });
  try {
    return await finished;
  } finally {
    clearTimeout(timer);
    await Promise.race([
      consumer.disconnect().catch(() => {}),
      new Promise((resolve) => setTimeout(resolve, DISCONNECT_BUDGET_MS)),
    ]);
  }
}

async function main() {
  const [bootstrap, highWatermark, budgetSeconds] = process.argv.slice(2);
  const records = await consume(bootstrap, highWatermark, Number(budgetSeconds) * 1000);
  const clientVersion = `kafkajs ${kafkajsVersion} (node ${process.version})`;
  return JSON.stringify({ client: 'kafkajs', client_version: clientVersion, records });
}

main().then(
  (document) => writeThenExit(process.stdout, `${document}\n`, 0),
  (error) => fail(error && error.message ? error.message : String(error)),
);
