// One WebRTC link per remote peer, negotiated over registry signals with the "perfect
// negotiation" pattern, so two peers that start at the same moment still end with one link.

/** What travels inside a registry `signal` for WebRTC. */
export type RtcSignal =
  | { rtc: 'description', description: RTCSessionDescriptionInit }
  | { rtc: 'candidate', candidate: RTCIceCandidateInit | null }

export function isRtcSignal (data: unknown): data is RtcSignal {
  const d = data as { rtc?: unknown } | null
  return typeof d === 'object' && d !== null && (d.rtc === 'description' || d.rtc === 'candidate')
}

export interface LinkEvents {
  open: () => void
  close: () => void
  message: (text: string) => void
  failed: (reason: string) => void
}

export class Link {
  readonly pc: RTCPeerConnection
  readonly channel: RTCDataChannel
  #makingOffer = false
  #ignoreOffer = false

  /**
   * `polite`: on an offer collision this side gives way. The channel is pre-negotiated
   * (same id on both sides), so neither side waits for the other's `datachannel` event.
   */
  constructor (readonly remote: string, readonly polite: boolean, iceServers: RTCIceServer[], readonly send: (s: RtcSignal) => Promise<void>, events: LinkEvents) {
    this.pc = new RTCPeerConnection({ iceServers })
    this.channel = this.pc.createDataChannel('chat', { negotiated: true, id: 0 })
    this.channel.onopen = () => events.open()
    this.channel.onclose = () => events.close()
    this.channel.onmessage = (e: MessageEvent<unknown>) => {
      if (typeof e.data === 'string') events.message(e.data)
    }
    this.pc.onicecandidate = ({ candidate }) => {
      this.send({ rtc: 'candidate', candidate: candidate === null ? null : candidate.toJSON() }).catch(err => events.failed(String(err)))
    }
    this.pc.onconnectionstatechange = () => {
      if (this.pc.connectionState === 'failed') events.failed('the WebRTC connection failed (no route between the peers: configure ICE_SERVERS)')
    }
    this.pc.onnegotiationneeded = async () => {
      try {
        this.#makingOffer = true
        await this.pc.setLocalDescription()
        await this.send({ rtc: 'description', description: this.pc.localDescription as RTCSessionDescriptionInit })
      } catch (err) {
        events.failed(String(err))
      } finally {
        this.#makingOffer = false
      }
    }
  }

  async receive (signal: RtcSignal): Promise<void> {
    if (signal.rtc === 'description') {
      const { description } = signal
      const collision = description.type === 'offer' && (this.#makingOffer || this.pc.signalingState !== 'stable')
      this.#ignoreOffer = !this.polite && collision
      if (this.#ignoreOffer) return
      await this.pc.setRemoteDescription(description)
      if (description.type === 'offer') {
        await this.pc.setLocalDescription()
        await this.send({ rtc: 'description', description: this.pc.localDescription as RTCSessionDescriptionInit })
      }
      return
    }
    try {
      await this.pc.addIceCandidate(signal.candidate ?? undefined)
    } catch (err) {
      // Candidates of an offer we chose to ignore fail to apply; that is expected.
      if (!this.#ignoreOffer) throw err
    }
  }

  get isOpen (): boolean { return this.channel.readyState === 'open' }

  close (): void {
    this.channel.close()
    this.pc.close()
  }
}
