// The demo page: the client SDK for presence and signalling, WebRTC for the chat itself.
import { connect, RegistryError, type RegistryClient } from '../client/index.ts'
import { Link, isRtcSignal } from './rtc.ts'
import { byId, label, logLine, renderPeers, setStatus, type LinkState } from './view.ts'

interface DemoConfig { iceServers: RTCIceServer[] }

const connectForm = byId<HTMLFormElement>('connect-form')
const projectInput = byId<HTMLInputElement>('project')
const tokenInput = byId<HTMLInputElement>('token')
const nameInput = byId<HTMLInputElement>('display-name')
const connectButton = byId<HTMLButtonElement>('connect')
const disconnectButton = byId<HTMLButtonElement>('disconnect')
const sendForm = byId<HTMLFormElement>('send-form')
const messageInput = byId<HTMLInputElement>('message')
const sendButton = byId<HTMLButtonElement>('send')
const chatWith = byId('chat-with')

const config: Promise<DemoConfig> = fetch('config.json').then(async r => await r.json() as DemoConfig).catch(() => ({ iceServers: [] }))
const links = new Map<string, Link>()
let client: RegistryClient | undefined
let chosen: string | undefined

/**
 * The server's printed demo link carries the token in the fragment, which browsers never send
 * to a server. Read it once, then drop it from the address bar and the history entry.
 */
function readFragment (): boolean {
  const params = new URLSearchParams(location.hash.slice(1))
  const project = params.get('project')
  const token = params.get('token')
  if (project !== null && project !== '') projectInput.value = project
  if (token !== null && token !== '') tokenInput.value = token
  if (location.hash !== '') history.replaceState(null, '', location.pathname + location.search)
  return token !== null && token !== '' && projectInput.checkValidity()
}

function describe (err: unknown): string {
  if (err instanceof RegistryError) return `${err.message} (${err.code})`
  return err instanceof Error ? err.message : String(err)
}

function peerName (peerId: string): string {
  const peer = client?.peers.get(peerId)
  return peer === undefined ? peerId.slice(0, 6) : label(peer)
}

function linkState (peerId: string): LinkState {
  const link = links.get(peerId)
  return link === undefined ? 'none' : link.isOpen ? 'open' : 'connecting'
}

function redraw (): void {
  renderPeers(client?.peers.values() ?? [], chosen, linkState, peerId => { choose(peerId).catch(err => logLine('system', describe(err))) })
  const link = chosen === undefined ? undefined : links.get(chosen)
  const open = link?.isOpen === true
  messageInput.disabled = sendButton.disabled = !open
  chatWith.textContent = chosen === undefined
    ? 'No peer chosen.'
    : open ? `Chatting with ${peerName(chosen)}.` : `Connecting to ${peerName(chosen)}…`
}

/** The link to `peerId`, created on first use (by a click here or an offer from there). */
function linkFor (peerId: string, iceServers: RTCIceServer[]): Link {
  const existing = links.get(peerId)
  if (existing !== undefined) return existing
  const self = client as RegistryClient
  // Both sides must agree who gives way on an offer collision; peer ids are a shared order.
  const link = new Link(peerId, self.peerId > peerId, iceServers, signal => self.signal(peerId, signal), {
    open: () => {
      logLine('system', `Chat with ${peerName(peerId)} is open.`)
      // A peer that opened a chat with us becomes the one we answer, unless we chose another.
      const mine = chosen === peerId
      chosen ??= peerId
      redraw()
      if (mine) messageInput.focus()
    },
    close: () => {
      if (links.get(peerId) === link) links.delete(peerId)
      redraw()
    },
    message: text => logLine('theirs', text, peerName(peerId)),
    failed: reason => logLine('system', `Chat with ${peerName(peerId)}: ${reason}`)
  })
  links.set(peerId, link)
  return link
}

async function choose (peerId: string): Promise<void> {
  chosen = peerId
  linkFor(peerId, (await config).iceServers)
  redraw()
}

function dropLink (peerId: string): void {
  links.get(peerId)?.close()
  links.delete(peerId)
  if (chosen === peerId) chosen = undefined
}

function wire (c: RegistryClient, iceServers: RTCIceServer[]): void {
  c.on('peer-joined', peer => { logLine('system', `${label(peer)} joined.`); redraw() })
  c.on('peer-updated', () => redraw())
  c.on('peer-left', ({ peerId, peer }) => {
    logLine('system', `${label(peer)} left.`)
    dropLink(peerId)
    redraw()
  })
  c.on('signal', ({ from, data }) => {
    if (!isRtcSignal(data)) return
    linkFor(from, iceServers).receive(data).catch(err => logLine('system', `Signalling with ${peerName(from)} failed: ${describe(err)}`))
  })
  c.on('reconnecting', ({ attempt, error }) => setStatus(`Connection lost (${error.code}); reconnecting, attempt ${attempt}…`))
  c.on('reconnected', () => {
    document.documentElement.dataset.peerId = c.peerId
    setStatus(`Reconnected to project ${c.projectId}.`)
    redraw()
  })
  c.on('close', ({ error }) => {
    setStatus(error === undefined ? 'Disconnected.' : `Disconnected: ${describe(error)}`)
    for (const id of [...links.keys()]) dropLink(id)
    delete document.documentElement.dataset.peerId
    client = undefined
    const hadFocus = document.activeElement === disconnectButton
    connectButton.disabled = false
    disconnectButton.disabled = true
    redraw()
    if (hadFocus) connectButton.focus()
  })
}

async function start (): Promise<void> {
  for (const input of [projectInput, tokenInput]) {
    input.dataset.touched = ''
    input.setAttribute('aria-invalid', String(!input.checkValidity()))
  }
  const invalid = [projectInput, tokenInput].find(i => !i.checkValidity())
  if (invalid !== undefined) {
    setStatus(invalid === projectInput ? 'Enter a valid project id.' : 'Enter a token.')
    invalid.focus()
    return
  }
  connectButton.disabled = true
  setStatus('Connecting…')
  try {
    const { iceServers } = await config
    const c = await connect({ url: new URL('../', document.baseURI).href, project: projectInput.value, token: tokenInput.value })
    client = c
    // Lets a reader (or a test) tell this tab apart from the others.
    document.documentElement.dataset.peerId = c.peerId
    wire(c, iceServers)
    disconnectButton.disabled = false
    setStatus(`Connected to project ${c.projectId} as ${c.peerId.slice(0, 6)}.`)
    const displayName = nameInput.value.trim()
    if (displayName !== '') await c.setMeta({ displayName }).catch(err => setStatus(`Connected, but the name was refused: ${describe(err)}`))
    redraw()
    // The connect button is now disabled and would drop focus to the page: go where the peers are.
    byId('peers-title').focus()
  } catch (err) {
    setStatus(`Could not connect: ${describe(err)}`)
    connectButton.disabled = false
    tokenInput.focus()
  }
}

connectForm.addEventListener('submit', event => {
  event.preventDefault()
  start().catch(err => setStatus(describe(err)))
})

disconnectButton.addEventListener('click', () => { client?.close().catch(() => {}) })

sendForm.addEventListener('submit', event => {
  event.preventDefault()
  const link = chosen === undefined ? undefined : links.get(chosen)
  const text = messageInput.value.trim()
  if (link === undefined || !link.isOpen || text === '') return
  link.channel.send(text)
  logLine('mine', text, `You → ${peerName(link.remote)}`)
  messageInput.value = ''
  messageInput.focus()
})

redraw()
if (readFragment()) start().catch(err => setStatus(describe(err)))
