// Enqueue one ktsync message from Node with celery-node: the ktsync package is not needed.
//
//   npm ci && KTSYNC_REDIS_URL=redis://127.0.0.1:6379/0 [KTSYNC_QUEUE=ktsync.live] node send_contact.js [message.json]
//
// The message is a contract-v1 JSON object (default: ../contact.json, a contact.upsert). Prints the
// Celery task id; exits 1 with one line on stderr when the type is unknown or the broker unreachable.
//
// celery-node speaks Celery's message protocol 2 (headers `task` and `id`, the JSON body
// [args, kwargs, embed]) and LPUSHes it onto the Redis list named after the queue: what ktsync's
// Celery 5 workers read.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const celery = require("celery-node");

// The task to call for each message type (the wire: ktsync's README, "For other teams").
const TASKS = {
  "contact.upsert": "ktsync.sync_contact",
  "contact.deleted": "ktsync.delete_contact",
  "klicktipp.deletion_requested": "ktsync.handle_deletion_request",
  "crm.contact_changed": "ktsync.fetch_and_sync",
  "klicktipp.contact_changed": "ktsync.refresh_from_klicktipp",
};
// "ktsync.live" for changes as they happen; "ktsync.bulk" for imports and resyncs (served after live work).
const QUEUE = process.env.KTSYNC_QUEUE || "ktsync.live";
const BROKER = process.env.KTSYNC_REDIS_URL || "redis://127.0.0.1:6379/0";

async function main() {
  const file = process.argv[2] || path.join(__dirname, "..", "contact.json");
  const message = JSON.parse(fs.readFileSync(file, "utf8"));
  const task = TASKS[message.type];
  if (!task) {
    throw new Error(`type: must be one of ${Object.keys(TASKS).join(", ")}, got ${JSON.stringify(message.type)}`);
  }
  // The result backend is never read; naming the broker keeps celery-node from trying AMQP.
  const client = celery.createClient(BROKER, BROKER, QUEUE);
  // client.sendTask(task, [message]) sends the same message, but neither takes headers nor says
  // when (or whether) Redis took it. So: build the message, add headers, publish, await.
  const id = crypto.randomUUID();
  const msg = client.createTaskMessage(id, task, [message], {}); // the message is the one positional argument
  // Optional: when the message was enqueued (Unix seconds), for ktsync's queue age and latency.
  msg.headers.ktsync_enqueued_at = Date.now() / 1000;
  // celery-node sets no argsrepr; none is needed: the worker shows the task as
  // "contact.upsert hubspot/501" in Flower and `celery events`, never the message's personal data.
  try {
    await client.isReady();
    await client.broker.publish(msg.body, "", QUEUE, msg.headers, msg.properties);
  } catch (err) {
    throw new Error(`cannot reach the broker: ${err.message}`);
  }
  await client.disconnect();
  console.log(id);
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
