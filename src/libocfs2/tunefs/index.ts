/**
 * tunefs: change an unmounted volume's parameters as tunefs.ocfs2 does.
 *
 *   const s = await TuneSession.open(dev);        // refuses mounted / heartbeating / dirty volumes
 *   await setLabel(s, 'x'); await s.close();     // one operation per session
 */
export { TuneSession, TunefsError, checkOfflineAccess, type TunefsOpenOptions } from './session';
export {
  setLabel, resetUuid, clonedVolume, updateClusterStack, formatSlotMap, setJournalSize, setSlotCount, growVolume,
  parseTuneUuid, type ClusterDesc, type FeatureChange, type TuneProgress,
} from './ops';
export { setFeatures } from './features';
export { queryFormat } from './query';
