// DOM helpers. Everything other peers control (names, meta, messages) goes in as text, never as HTML.
import type { Peer } from '../client/index.ts'

export function byId<T extends HTMLElement> (id: string): T {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`missing #${id}`)
  return el as T
}

/** How a peer is shown: its chosen display name, else the token's name, plus a short id. */
export function label (peer: Peer): string {
  const chosen = typeof peer.meta.displayName === 'string' && peer.meta.displayName.trim() !== '' ? peer.meta.displayName.trim() : undefined
  return `${chosen ?? peer.name ?? peer.userId} · ${peer.peerId.slice(0, 6)}`
}

export type LinkState = 'none' | 'connecting' | 'open'

const stateText: Record<LinkState, string> = { none: '', connecting: 'connecting…', open: 'chat open' }

/** Redraws the peer list; the chosen peer's button is pressed and keeps focus if it had it. */
export function renderPeers (peers: Iterable<Peer>, chosen: string | undefined, states: (peerId: string) => LinkState, choose: (peerId: string) => void): void {
  const list = byId<HTMLUListElement>('peer-list')
  const focused = (document.activeElement as HTMLElement | null)?.dataset.peerId
  const items: HTMLLIElement[] = []
  for (const peer of peers) {
    const li = document.createElement('li')
    const button = document.createElement('button')
    button.type = 'button'
    button.dataset.peerId = peer.peerId
    button.setAttribute('aria-pressed', String(peer.peerId === chosen))
    const name = document.createElement('span')
    name.textContent = label(peer)
    button.append(name)
    const state = stateText[states(peer.peerId)]
    if (state !== '') {
      const s = document.createElement('span')
      s.className = 'state'
      s.textContent = ` (${state})`
      button.append(s)
    }
    button.addEventListener('click', () => choose(peer.peerId))
    li.append(button)
    items.push(li)
  }
  list.replaceChildren(...items)
  byId('peer-count').textContent = `(${items.length})`
  byId('peers-empty').hidden = items.length > 0
  if (focused !== undefined) list.querySelector<HTMLButtonElement>(`button[data-peer-id="${CSS.escape(focused)}"]`)?.focus()
}

/** Appends to the chat log (role=log, so screen readers announce it). */
export function logLine (kind: 'system' | 'mine' | 'theirs', text: string, who?: string): void {
  const li = document.createElement('li')
  li.className = kind
  if (who !== undefined) {
    const w = document.createElement('span')
    w.className = 'who'
    w.textContent = `${who}: `
    li.append(w)
  }
  li.append(document.createTextNode(text))
  const log = byId<HTMLOListElement>('log')
  log.append(li)
  log.scrollTop = log.scrollHeight
}

export function setStatus (text: string): void {
  byId('status').textContent = text
}
