#!/usr/bin/env node
// Compressed golden flow for KafkaJS: one send() of 20 records to golden with gzip, KafkaJS's
// only built-in codec (snappy, lz4 and zstd need third-party codec packages).
// Usage: node kafkajs_compressed.js BOOTSTRAP. Exits 0 only when the batch was acknowledged.
'use strict';

const path = require('path');
const { createRequire } = require('module');

const clientsPackage = path.join(__dirname, '..', '..', 'clients', 'node', 'package.json');
const requireClient = createRequire(clientsPackage);
const { Kafka, CompressionTypes, logLevel } = requireClient('kafkajs');

const TOPIC = 'golden';
const RECORD_COUNT = 20;
const VALUE_BYTES = 200;
// Fixed CreateTimes keep the captured bytes identical from run to run.
const TIMESTAMP_MS = 1700000000000;

// Same records as flows/librdkafka_compressed.py: key k<i>, value `value-<i>` repeated to
// 200 bytes, header h1=v1, CreateTime TIMESTAMP_MS + i.
function goldenRecords() {
  const records = [];
  for (let i = 0; i < RECORD_COUNT; i += 1) {
    records.push({
      key: `k${i}`,
      value: `value-${i}`.repeat(VALUE_BYTES).slice(0, VALUE_BYTES),
      headers: { h1: 'v1' },
      timestamp: String(TIMESTAMP_MS + i),
    });
  }
  return records;
}

async function main() {
  const kafka = new Kafka({
    clientId: 'golden-kafkajs',
    brokers: [process.argv[process.argv.length - 1]],
    logLevel: logLevel.WARN,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: 2 },
  });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const result = await producer.send({
      topic: TOPIC,
      compression: CompressionTypes.GZIP,
      messages: goldenRecords(),
    });
    const first = Number(result[0].baseOffset);
    const last = first + RECORD_COUNT - 1;
    console.log(`gzip: produced ${RECORD_COUNT} records to ${TOPIC}@${first}..${last}`);
  } finally {
    await producer.disconnect();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
