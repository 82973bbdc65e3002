// KafkaJS consumer group: a member consumes half the orders, committing each, and leaves;
// a new member of the same group resumes with the next one and reads the rest.
// Usage: node kafkajs_group.js BOOTSTRAP
const { Kafka, logLevel } = require('kafkajs');

const [TOPIC, GROUP, TOTAL] = ['js-orders', 'js-members', 20];

async function consumeUntil(kafka, count) {
  const consumer = kafka.consumer({ groupId: GROUP, sessionTimeout: 6000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  const got = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${count} arrived`)), 30000);
    consumer
      .run({
        autoCommit: false,
        eachMessage: async ({ topic, partition, message }) => {
          if (got.length >= count) return;
          got.push(JSON.parse(message.value.toString()).seq);
          await consumer.commitOffsets([
            { topic, partition, offset: (BigInt(message.offset) + 1n).toString() },
          ]);
          if (got.length === count) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return got;
}

async function main() {
  const bootstrap = process.argv[2];
  const kafka = new Kafka({ clientId: 'js-group', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }] });
  const producer = kafka.producer();
  await producer.connect();
  for (let seq = 0; seq < TOTAL; seq++) {
    await producer.send({ topic: TOPIC, messages: [{ key: `k${seq % 3}`, value: JSON.stringify({ seq }) }] });
  }
  await producer.disconnect();

  const first = await consumeUntil(kafka, TOTAL / 2);
  const second = await consumeUntil(kafka, TOTAL / 2);
  const expected = [...Array(TOTAL).keys()];
  const all = first.concat(second);
  if (JSON.stringify(all) !== JSON.stringify(expected)) {
    throw new Error(`consumed ${JSON.stringify(first)} then ${JSON.stringify(second)}`);
  }
  const offsets = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  const committed = offsets[0].partitions[0].offset;
  if (committed !== String(TOTAL)) throw new Error(`committed offset ${committed}`);
  const described = await admin.describeGroups([GROUP]);
  if (described.groups[0].state !== 'Empty') throw new Error(`group state ${described.groups[0].state}`);
  await admin.disconnect();
  console.log('ok');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
