/// SpaceData will hold the dataset protocol and registry (ATARI, OBJ3D_SMALL, OBJ3D_LARGE), PNG
/// decoding through libpng, PIL-compatible resizing, the batch loader and the built-in scene generator.
import SpaceCore
