#!/usr/bin/env node
// Golden flow for KafkaJS: produce one record, then consume it back through a consumer group
// (KafkaJS consumers always join one). Usage: node kafkajs.js BOOTSTRAP. Exits 0 only when
// the produce was acknowledged and the consumer received key k1, value hello-golden, h1=v1.
'use strict';

const path = require('path');
const { createRequire } = require('module');

const clientsPackage = path.join(__dirname, '..', '..', 'clients', 'node', 'package.json');
const requireClient = createRequire(clientsPackage);
const { Kafka, logLevel } = requireClient('kafkajs');

const TOPIC = 'golden';
// A fixed CreateTime keeps the captured Produce bytes identical from run to run.
const TIMESTAMP_MS = '1700000000000';
const CONSUME_BUDGET_MS = 20000;
// Keep the group alive this long after the record arrives, so a Heartbeat is captured too.
const LINGER_AFTER_RECORD_MS = 1500;

function check(message) {
  const got = {
    key: message.key && message.key.toString(),
    value: message.value && message.value.toString(),
    h1: message.headers && message.headers.h1 && message.headers.h1.toString(),
  };
  if (got.key !== 'k1' || got.value !== 'hello-golden' || got.h1 !== 'v1') {
    throw new Error(`consumed unexpected record ${JSON.stringify(got)}`);
  }
  return got;
}

async function produce(kafka) {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const result = await producer.send({
      topic: TOPIC,
      messages: [
        { key: 'k1', value: 'hello-golden', headers: { h1: 'v1' }, timestamp: TIMESTAMP_MS },
      ],
    });
    console.log(`produced ${JSON.stringify(result)}`);
  } finally {
    await producer.disconnect();
  }
}

async function consume(kafka) {
  const consumer = kafka.consumer({
    groupId: 'golden-kafkajs',
    sessionTimeout: 10000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 100,
  });
  await consumer.connect();
  let timer;
  try {
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
    const received = new Promise((resolve, reject) => {
      consumer.run({
        eachMessage: async ({ partition, message }) => {
          try {
            resolve({ partition, offset: message.offset, record: check(message) });
          } catch (error) {
            reject(error);
          }
        },
      }).catch(reject);
    });
    const deadline = new Promise((_, reject) => {
      const expire = () => reject(new Error('no record consumed before the deadline'));
      timer = setTimeout(expire, CONSUME_BUDGET_MS);
    });
    const got = await Promise.race([received, deadline]);
    console.log(`consumed ${TOPIC}[${got.partition}]@${got.offset}: ${JSON.stringify(got.record)}`);
    await new Promise((resolve) => setTimeout(resolve, LINGER_AFTER_RECORD_MS));
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
}

async function main() {
  const kafka = new Kafka({
    clientId: 'golden-kafkajs',
    brokers: [process.argv[2]],
    logLevel: logLevel.WARN,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: 2 },
  });
  await produce(kafka);
  await consume(kafka);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
