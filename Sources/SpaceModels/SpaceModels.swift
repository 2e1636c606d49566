/// SpaceModels will hold the protocols a plugin implements (image encoder, glimpse encoder and
/// decoder, background mask and component networks, priors), the registry keyed by config name,
/// and SPACE itself under `Space/` (foreground, background, the combined model).
import SpaceCore
