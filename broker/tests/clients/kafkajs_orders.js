// The KafkaJS producer exactly as a user writes it, sending orders to `customer-orders`.
// Usage: node kafkajs_orders.js BOOTSTRAP COUNT
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, count] = [process.argv[2], Number(process.argv[3])];
  const kafka = new Kafka({ clientId: 'orders-app', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  for (let i = 0; i < count; i++) {
    const order = { id: `order-${i % 10}`, amount: i };
    await producer.send({
      topic: 'customer-orders',
      messages: [{ key: order.id, value: JSON.stringify({ ...order, seq: i }) }],
    });
  }
  await producer.disconnect();
  console.log(`ok ${count}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
