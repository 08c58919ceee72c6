// Runs the unchanged @umami/node client against a live nself-analytics, configured only with its host (and the
// website id Umami's clients always carry). Usage: node umami_node.mjs <host> <websiteId> <hostname>.
// Prints {"errors": [...], "statuses": [...]}: what the client threw, and each answer's status.
import { Umami } from '@umami/node'

const [hostUrl, websiteId, hostname] = process.argv.slice(2)
const errors = []
const statuses = []
const umami = new Umami({ websiteId, hostUrl })
try {
  const calls = [
    umami.track({ hostname, url: '/home?utm_source=newsletter', title: 'Home', language: 'en-US', screen: '1440x900',
                  referrer: 'https://news.example/item' }),
    umami.track({ hostname, url: '/pricing', title: 'Pricing', language: 'en-US', screen: '1440x900' }),
    umami.track({ hostname, url: '/pricing', name: 'signup', data: { plan: 'startup' } }),
    umami.identify({ plan: 'startup' }),
  ]
  for (const response of await Promise.all(calls)) statuses.push(response.status)
} catch (err) {
  errors.push(String(err?.stack ?? err))
}
console.log(JSON.stringify({ errors, statuses }))
