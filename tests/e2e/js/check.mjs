// Drives a Keyplane server with the official JavaScript client, unchanged, and prints what it saw as JSON.
// Usage: KEYPLANE_URL=http://127.0.0.1:9200 ELASTIC_PASSWORD=... node check.mjs
import { Client, errors } from '@elastic/elasticsearch'

const node = process.env.KEYPLANE_URL
const admin = new Client({ node, auth: { username: 'elastic', password: process.env.ELASTIC_PASSWORD } })
const out = {}

out.info = await admin.info()

await admin.security.putRole({
  name: 'js_reader',
  cluster: ['monitor'],
  indices: [{ names: ['logs-*'], privileges: ['read'] }]
})
await admin.security.putUser({ username: 'js_user', password: 'js-user-secret', roles: ['js_reader'] })
const user = new Client({ node, auth: { username: 'js_user', password: 'js-user-secret' } })
out.user_authenticate = await user.security.authenticate()
out.user_has_privileges = await user.security.hasPrivileges({
  cluster: ['monitor', 'manage_security'],
  index: [{ names: ['logs-app'], privileges: ['read', 'write'] }]
})
try {
  await user.security.putUser({ username: 'intruder', password: 'intruder-secret', roles: [] })
  out.user_put_user = 'allowed'
} catch (err) {
  out.user_put_user = { status: err.meta.statusCode, type: err.body.error.type, is_response_error: err instanceof errors.ResponseError }
}

const key = await admin.security.createApiKey({ name: 'js-key', metadata: { application: 'my-app' } })
out.key = { id: key.id, name: key.name, has_secret: Boolean(key.api_key), has_encoded: Boolean(key.encoded) }
const byKey = new Client({ node, auth: { apiKey: key.encoded } })
out.key_authenticate = await byKey.security.authenticate()
const descriptors = { 'role-a': { indices: [{ names: ['*'], privileges: ['write'] }] } }
out.update_first = await admin.security.updateApiKey({ id: key.id, role_descriptors: descriptors, metadata: { environment: { level: 2 } }, expiration: '30d' })
out.update_second = await admin.security.updateApiKey({ id: key.id, role_descriptors: descriptors, metadata: { environment: { level: 2 } } })
out.query = await admin.security.queryApiKeys({ query: { term: { name: 'js-key' } }, sort: [{ creation: 'desc' }], size: 5 })
out.invalidate = await admin.security.invalidateApiKey({ ids: [key.id] })
try {
  await byKey.security.authenticate()
  out.invalidated_key_authenticate = 'allowed'
} catch (err) {
  out.invalidated_key_authenticate = { status: err.meta.statusCode }
}

const cc = await admin.security.createCrossClusterApiKey({
  name: 'js-cc', access: { search: [{ names: ['logs*'] }] }, metadata: { application: 'search' }
})
out.cc_update = await admin.security.updateCrossClusterApiKey({
  id: cc.id, access: { replication: [{ names: ['archive'] }] }, metadata: { application: 'replication' }
})
out.cc_get = await admin.security.getApiKey({ id: cc.id })

out.connector_put = await admin.connector.put({
  connector_id: 'js-connector', index_name: 'search-js', name: 'JS Connector', service_type: 'google_drive'
})
const secret = await admin.connector.secretPost({ value: 'my-secret' })
out.secret_get = await admin.connector.secretGet({ id: secret.id })
out.connector_api_key_id = await admin.connector.updateApiKeyId({
  connector_id: 'js-connector', api_key_id: 'my-api-key-id', api_key_secret_id: secret.id
})
out.connector_configuration = await admin.connector.updateConfiguration({
  connector_id: 'js-connector',
  configuration: { folder: { label: 'Folder', type: 'str', value: '' } }
})
out.connector_values = await admin.connector.updateConfiguration({ connector_id: 'js-connector', values: { folder: '/docs' } })
out.connector_get = await admin.connector.get({ connector_id: 'js-connector' })
out.sync_job = await admin.connector.syncJobPost({ id: 'js-connector', job_type: 'full' })
out.sync_jobs = await admin.connector.syncJobList({ connector_id: 'js-connector' })
try {
  await admin.connector.get({ connector_id: 'missing-connector' })
  out.connector_missing = 'found'
} catch (err) {
  out.connector_missing = { status: err.meta.statusCode, type: err.body.error.type }
}

console.log(JSON.stringify(out))
