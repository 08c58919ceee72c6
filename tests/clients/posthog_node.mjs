// Runs the unchanged posthog-node package against a live nself-analytics, configured only with its host and a
// write key as the project API key. Usage: node posthog_node.mjs <host> <writeKey> <suffix>.
// Prints {"errors": [...]}: every error the library reported (its error event, or a thrown error).
import { PostHog } from 'posthog-node'

const [host, writeKey, suffix] = process.argv.slice(2)
const errors = []
const user = `node-ph-${suffix}`
const client = new PostHog(writeKey, { host, flushAt: 3, flushInterval: 100 })
client.on('error', (err) => errors.push(String(err?.message ?? err)))
try {
  client.identify({ distinctId: user, properties: { $set: { tier: 'compat' }, $anon_distinct_id: `anon-${user}` } })
  client.capture({ distinctId: user, event: '$set', properties: { $set: { plan: 'pro' } } })
  client.capture({ distinctId: user, event: 'Order Completed', properties: { total: 12 } })
  client.capture({ distinctId: user, event: '$pageview', properties: { $current_url: 'https://compat.test/home' } })
  client.capture({ distinctId: user, event: '$screen', properties: { $screen_name: 'Main' } })
  client.groupIdentify({ groupType: 'company', groupKey: `acme-${user}`, properties: { name: 'Acme' }, distinctId: user })
  client.alias({ distinctId: `prev-${user}`, alias: user })
  await client.shutdown(20000)
} catch (err) {
  errors.push(['thrown', String(err?.stack ?? err)])
}
console.log(JSON.stringify({ errors }))
