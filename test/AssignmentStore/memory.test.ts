import * as AssignmentStore from "../../src/AssignmentStore.js"
import { contract } from "./contract.js"

contract("AssignmentStore memory", AssignmentStore.layerMemory)
