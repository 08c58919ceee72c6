// Runs the unchanged npm packages of Segment (@segment/analytics-node) and RudderStack
// (@rudderstack/rudder-sdk-node) against a live nself-analytics, each configured only with a host and a
// write key. Usage: node node_clients.mjs <host> <writeKey> <suffix>. Prints {"errors": [...]}: every error
// a library reported (its error event, error handler or an event callback's error).
import { Analytics } from '@segment/analytics-node'
import RudderAnalytics from '@rudderstack/rudder-sdk-node'

const [host, writeKey, suffix] = process.argv.slice(2)
const errors = []
const page = { url: 'https://compat.test/home', path: '/home', title: 'Home' }

async function segment() {
  const user = `node-segment-${suffix}`
  const analytics = new Analytics({ writeKey, host })
  analytics.on('error', (err) => errors.push(['segment', String(err?.reason ?? err?.code ?? err)]))
  analytics.identify({ userId: user, anonymousId: `anon-${user}`, traits: { tier: 'compat' } })
  analytics.track({ userId: user, event: 'Order Completed', properties: { total: 12 } })
  analytics.page({ userId: user, name: 'Home', properties: page })
  analytics.screen({ userId: user, name: 'Main' })
  analytics.group({ userId: user, groupId: `group-${user}`, traits: { name: 'Acme' } })
  analytics.alias({ userId: user, previousId: `prev-${user}` })
  await analytics.closeAndFlush({ timeout: 20000 })
}

async function rudder() {
  const user = `node-rudder-${suffix}`
  const analytics = new RudderAnalytics(writeKey, { dataPlaneUrl: host, errorHandler: (err) => errors.push(['rudder', String(err)]) })
  const done = (err) => { if (err) errors.push(['rudder-callback', String(err)]) }
  analytics.identify({ userId: user, anonymousId: `anon-${user}`, traits: { tier: 'compat' } }, done)
  analytics.track({ userId: user, event: 'Order Completed', properties: { total: 12 } }, done)
  analytics.page({ userId: user, name: 'Home', properties: page }, done)
  analytics.screen({ userId: user, name: 'Main' }, done)
  analytics.group({ userId: user, groupId: `group-${user}`, traits: { name: 'Acme' } }, done)
  analytics.alias({ userId: user, previousId: `prev-${user}` }, done)
  await analytics.flush()
}

try {
  await segment()
  await rudder()
} catch (err) {
  errors.push(['thrown', String(err?.stack ?? err)])
}
console.log(JSON.stringify({ errors }))
