// KafkaJS transactions and idempotence: an idempotent producer's records land once; a
// transactional producer commits one transaction (with a group's offsets, as
// sendOffsets does) and aborts another; a read_committed consumer sees exactly the
// committed records, and the group's committed offset is the one sent in the transaction.
// Usage: node kafkajs_transactions.js BOOTSTRAP
const { Kafka, logLevel } = require('kafkajs');

const [TOPIC, GROUP] = ['js-txn', 'js-txn-group'];

async function readAll(kafka, readUncommitted, expected) {
  const consumer = kafka.consumer({
    groupId: `js-txn-reader-${readUncommitted}`,
    readUncommitted,
    sessionTimeout: 6000,
    heartbeatInterval: 1000,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  const got = [];
  await new Promise((resolve, reject) => {
    let idle;
    const finish = () => resolve();
    const deadline = setTimeout(finish, 20000);
    consumer
      .run({
        eachMessage: async ({ message }) => {
          got.push(message.value.toString());
          if (got.length >= expected) {
            clearTimeout(idle);
            // Wait a little for anything that should not be there.
            idle = setTimeout(() => {
              clearTimeout(deadline);
              finish();
            }, 1500);
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return got.sort();
}

async function main() {
  const bootstrap = process.argv[2];
  const kafka = new Kafka({ clientId: 'js-txn', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 2 }], waitForLeaders: true });
  await admin.disconnect();

  const idempotent = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await idempotent.connect();
  for (let i = 0; i < 5; i++) {
    await idempotent.send({ topic: TOPIC, acks: -1, messages: [{ value: `plain-${i}`, partition: i % 2 }] });
  }
  await idempotent.disconnect();

  const producer = kafka.producer({ transactionalId: 'js-txn-writer', maxInFlightRequests: 1, idempotent: true });
  await producer.connect();
  const committed = await producer.transaction();
  await committed.send({ topic: TOPIC, messages: [0, 1, 2].map((i) => ({ value: `commit-${i}`, partition: i % 2 })) });
  await committed.sendOffsets({
    consumerGroupId: GROUP,
    topics: [{ topic: TOPIC, partitions: [{ partition: 0, offset: '3' }] }],
  });
  await committed.commit();
  const aborted = await producer.transaction();
  await aborted.send({ topic: TOPIC, messages: [0, 1, 2].map((i) => ({ value: `abort-${i}`, partition: i % 2 })) });
  await aborted.sendOffsets({
    consumerGroupId: GROUP,
    topics: [{ topic: TOPIC, partitions: [{ partition: 0, offset: '99' }] }],
  });
  await aborted.abort();
  await producer.disconnect();

  const plain = [0, 1, 2, 3, 4].map((i) => `plain-${i}`);
  const commits = [0, 1, 2].map((i) => `commit-${i}`);
  const aborts = [0, 1, 2].map((i) => `abort-${i}`);
  const rc = await readAll(kafka, false, plain.length + commits.length);
  const expectedRc = [...plain, ...commits].sort();
  if (JSON.stringify(rc) !== JSON.stringify(expectedRc)) {
    throw new Error(`read_committed saw ${JSON.stringify(rc)}`);
  }
  const ru = await readAll(kafka, true, plain.length + commits.length + aborts.length);
  const expectedRu = [...plain, ...commits, ...aborts].sort();
  if (JSON.stringify(ru) !== JSON.stringify(expectedRu)) {
    throw new Error(`read_uncommitted saw ${JSON.stringify(ru)}`);
  }
  const admin2 = kafka.admin();
  await admin2.connect();
  const offsets = await admin2.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  await admin2.disconnect();
  const p0 = offsets[0].partitions.find((p) => p.partition === 0);
  if (!p0 || p0.offset !== '3') {
    throw new Error(`the group's committed offset is ${JSON.stringify(offsets)}, expected 3`);
  }
  console.log('ok');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
