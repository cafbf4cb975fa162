/**
 * Uploaded media, kept in memory (Client-Server spec, "Content repository"). matrix-js-sdk uploads
 * the encrypted room-key bundle of an invite here (MSC4268) and the invitee downloads it on join.
 */
export interface StoredMedia {
  bytes: Uint8Array;
  contentType: string;
  filename: string | undefined;
  uploader: string;
}

export class MediaStore {
  readonly #media = new Map<string, StoredMedia>();

  put(mediaId: string, media: StoredMedia): void {
    this.#media.set(mediaId, { ...media, bytes: media.bytes.slice() });
  }

  get(mediaId: string): StoredMedia | undefined {
    return this.#media.get(mediaId);
  }
}
