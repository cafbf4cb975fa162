import type { DehydrationFlags, E2eeFlags, Profile, ProfileName } from "../../../src/testing/index.js";

/**
 * What each profile must hold, written out by hand from the servers it models (element-hq/synapse
 * v1.156.0 and v1.157.1, matrix-construct/tuwunel 1.9, continuwuity/continuwuity@09073235) and, for
 * `msc`, from the spec and the MSCs,
 * as the table in docs/mock-homeserver.md lists them. Never built from src/testing: a flag flipped
 * in a profile, or in a table it is spread from, must disagree with these values.
 */

export const expectedE2eeFlags = {
  "synapse-1.157": {
    seedSignedCurve25519Count: true,
    deviceKeysMismatchErrcode: "M_BAD_JSON",
    oneTimeKeyConflict: "reject",
    remoteDeviceLists: "synapse",
    deviceListRefresh: false,
  },
  "synapse-1.156": {
    seedSignedCurve25519Count: true,
    deviceKeysMismatchErrcode: "M_BAD_JSON",
    oneTimeKeyConflict: "reject",
    remoteDeviceLists: "synapse",
    deviceListRefresh: false,
  },
  tuwunel: {
    seedSignedCurve25519Count: true,
    deviceKeysMismatchErrcode: "M_UNKNOWN",
    oneTimeKeyConflict: "keep-existing",
    remoteDeviceLists: "federation",
    deviceListRefresh: false,
  },
  // Nothing seeds a zero count; it always asks remote servers, as tuwunel; the errcode and conflict
  // handling are tuwunel's.
  continuwuity: {
    seedSignedCurve25519Count: false,
    deviceKeysMismatchErrcode: "M_UNKNOWN",
    oneTimeKeyConflict: "keep-existing",
    remoteDeviceLists: "federation",
    deviceListRefresh: false,
  },
  msc: {
    seedSignedCurve25519Count: false,
    deviceKeysMismatchErrcode: "M_BAD_JSON",
    oneTimeKeyConflict: "reject",
    remoteDeviceLists: "msc",
    deviceListRefresh: true,
  },
} as const satisfies Record<ProfileName, E2eeFlags>;

export const expectedDehydrationFlags = {
  // Synapse 1.157 serves the current MSC's GET and keeps the draft's POST.
  "synapse-1.157": {
    dehydratedDevices: true,
    dehydratedEventsGet: true,
    dehydratedEventsPost: true,
    dehydratedEventsPageSize: 100,
    dehydratedEventsLimitParam: true,
    dehydratedEventsToken: "d-prefixed",
    dehydratedGetNextBatch: "synapse",
    dehydratedPostNextBatch: "always",
    dehydratedPutRules: "synapse",
  },
  // Synapse 1.156: POST only; GET …/events is a wrong method (405).
  "synapse-1.156": {
    dehydratedDevices: true,
    dehydratedEventsGet: false,
    dehydratedEventsPost: true,
    dehydratedEventsPageSize: 100,
    dehydratedEventsLimitParam: true,
    dehydratedEventsToken: "d-prefixed",
    dehydratedGetNextBatch: "synapse",
    dehydratedPostNextBatch: "always",
    dehydratedPutRules: "synapse",
  },
  // tuwunel (ruma): POST only, MAX_BATCH_EVENTS = 50, bare decimal tokens, no limit parameter.
  tuwunel: {
    dehydratedDevices: true,
    dehydratedEventsGet: false,
    dehydratedEventsPost: true,
    dehydratedEventsPageSize: 50,
    dehydratedEventsLimitParam: false,
    dehydratedEventsToken: "decimal",
    dehydratedGetNextBatch: "if-more",
    dehydratedPostNextBatch: "unless-empty",
    dehydratedPutRules: "ruma",
  },
  // continuwuity: tuwunel's.
  continuwuity: {
    dehydratedDevices: true,
    dehydratedEventsGet: false,
    dehydratedEventsPost: true,
    dehydratedEventsPageSize: 50,
    dehydratedEventsLimitParam: false,
    dehydratedEventsToken: "decimal",
    dehydratedGetNextBatch: "if-more",
    dehydratedPostNextBatch: "unless-empty",
    dehydratedPutRules: "ruma",
  },
  // The MSC as written now: GET only.
  msc: {
    dehydratedDevices: true,
    dehydratedEventsGet: true,
    dehydratedEventsPost: false,
    dehydratedEventsPageSize: 100,
    dehydratedEventsLimitParam: true,
    dehydratedEventsToken: "d-prefixed",
    dehydratedGetNextBatch: "if-more",
    dehydratedPostNextBatch: "always",
    dehydratedPutRules: "msc",
  },
} as const satisfies Record<ProfileName, DehydrationFlags>;

/** The profile fields that are objects or lists; their facts are checked one by one. */
export type StructuredField = "name" | "versions" | "unstableFeatures" | "capabilities" | "cors";

type ScalarFlags = Omit<Profile, StructuredField | keyof E2eeFlags | keyof DehydrationFlags>;

const synapseScalars = {
  maxRequestBodyBytes: 13_107_200,
  validationErrors: "synapse",
  emptyBodyIsEmptyObject: false,
  wrongMethodHasErrorBody: true,
  unknownPathMessage: "Unrecognized request",
  dummyAuthForUserVerification: true,
  loginReturnsHomeServer: true,
  deviceDisplayNameMaxLength: 100,
  nullDisplayNameClears: false,
  deviceIncludesUserId: true,
  unknownDeviceMessage: "No device found",
  deviceRenameIsDeviceListChange: true,
  emptyAccountDataIsDeleted: false,
  reservedAccountDataStatus: 405,
  noBackupMessage: "No backup found",
  slidingE2eeKeyFields: "always",
  slidingE2eeDeviceLists: "when-pos",
  slidingOmitZeroKeyCounts: false,
  slidingSendsFallbackKeyTypes: true,
  slidingOmitEmptyE2ee: false,
  slidingToDeviceSince: "since",
  slidingToDeviceIgnoresLimit: false,
  slidingToDeviceWhenEmpty: "empty-events",
  toDeviceLimitZeroJumpsToHead: true,
} as const satisfies ScalarFlags;

const tuwunelScalars = {
  maxRequestBodyBytes: 25_165_824,
  validationErrors: "ruma",
  emptyBodyIsEmptyObject: true,
  wrongMethodHasErrorBody: true,
  unknownPathMessage: "Not Found",
  dummyAuthForUserVerification: true,
  loginReturnsHomeServer: false,
  deviceDisplayNameMaxLength: null,
  nullDisplayNameClears: true,
  deviceIncludesUserId: false,
  unknownDeviceMessage: "Device not found.",
  deviceRenameIsDeviceListChange: false,
  emptyAccountDataIsDeleted: true,
  reservedAccountDataStatus: 400,
  noBackupMessage: "Key backup does not exist.",
  slidingE2eeKeyFields: "always",
  slidingE2eeDeviceLists: "when-nonempty",
  slidingOmitZeroKeyCounts: true,
  slidingSendsFallbackKeyTypes: true,
  slidingOmitEmptyE2ee: true,
  slidingToDeviceSince: "since-else-pos",
  slidingToDeviceIgnoresLimit: true,
  slidingToDeviceWhenEmpty: "omit-extension",
  toDeviceLimitZeroJumpsToHead: false,
} as const satisfies ScalarFlags;

/** Every flag that is a plain value, per profile. */
export const expectedScalarFlags = {
  "synapse-1.157": synapseScalars,
  "synapse-1.156": synapseScalars,
  tuwunel: tuwunelScalars,
  // continuwuity: its own request-size default and sliding sync habits, tuwunel's otherwise.
  continuwuity: {
    ...tuwunelScalars,
    maxRequestBodyBytes: 20_971_520,
    slidingSendsFallbackKeyTypes: false,
    slidingToDeviceSince: "pos",
    slidingToDeviceWhenEmpty: "omit-events",
  },
  msc: {
    maxRequestBodyBytes: 13_107_200,
    validationErrors: "synapse",
    emptyBodyIsEmptyObject: false,
    wrongMethodHasErrorBody: true,
    unknownPathMessage: "Unrecognized request",
    dummyAuthForUserVerification: true,
    loginReturnsHomeServer: false,
    deviceDisplayNameMaxLength: null,
    nullDisplayNameClears: false,
    deviceIncludesUserId: false,
    unknownDeviceMessage: "Device not found",
    emptyAccountDataIsDeleted: true,
    reservedAccountDataStatus: 405,
    noBackupMessage: "No current backup version",
    slidingE2eeKeyFields: "when-changed",
    slidingE2eeDeviceLists: "when-nonempty",
    slidingOmitZeroKeyCounts: false,
    deviceRenameIsDeviceListChange: true,
    slidingSendsFallbackKeyTypes: true,
    slidingOmitEmptyE2ee: false,
    slidingToDeviceSince: "since",
    slidingToDeviceIgnoresLimit: false,
    slidingToDeviceWhenEmpty: "empty-events",
    toDeviceLimitZeroJumpsToHead: false,
  },
} as const satisfies Record<ProfileName, ScalarFlags>;

/** Synapse's `SUPPORTED_VERSIONS`: r0.0.1 to v1.12. */
export const SYNAPSE_VERSIONS = [
  "r0.0.1",
  "r0.1.0",
  "r0.2.0",
  "r0.3.0",
  "r0.4.0",
  "r0.5.0",
  "r0.6.0",
  "r0.6.1",
  "v1.1",
  "v1.2",
  "v1.3",
  "v1.4",
  "v1.5",
  "v1.6",
  "v1.7",
  "v1.8",
  "v1.9",
  "v1.10",
  "v1.11",
  "v1.12",
];

export const expectedVersions: Record<ProfileName, string[]> = {
  "synapse-1.157": SYNAPSE_VERSIONS,
  "synapse-1.156": SYNAPSE_VERSIONS,
  tuwunel: [...SYNAPSE_VERSIONS, "v1.13", "v1.14", "v1.15", "v1.16", "v1.17", "v1.18", "v1.19"],
  // continuwuity's src/core/matrix/versions.rs skips v1.6, v1.7, v1.9 and v1.10.
  continuwuity: [
    "r0.0.1",
    "r0.1.0",
    "r0.2.0",
    "r0.3.0",
    "r0.4.0",
    "r0.5.0",
    "r0.6.0",
    "r0.6.1",
    "v1.1",
    "v1.2",
    "v1.3",
    "v1.4",
    "v1.5",
    "v1.8",
    "v1.11",
    "v1.12",
    "v1.13",
    "v1.14",
    "v1.15",
    "v1.16",
    "v1.17",
    "v1.18",
  ],
  msc: [...SYNAPSE_VERSIONS, "v1.13", "v1.14", "v1.15", "v1.16", "v1.17"],
};
